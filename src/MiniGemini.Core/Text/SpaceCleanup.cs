using System.Text;

namespace MiniGemini.Text;

/// <summary>
/// Hugging Face's <c>clean_up_tokenization_spaces</c> (" ." → ".", " n't" → "n't", …): the same ten
/// <c>str.replace</c> calls in the same order, run as a cascade of streaming replacers so that text arriving in
/// pieces is cleaned exactly as the whole string would be. Each stage holds back at most pattern length − 1 chars.
/// </summary>
internal sealed class SpaceCleanup
{
    static readonly (string Pattern, string Replacement)[] Rules =
    [
        (" .", "."), (" ?", "?"), (" !", "!"), (" ,", ","), (" ' ", "'"),
        (" n't", "n't"), (" 'm", "'m"), (" 's", "'s"), (" 've", "'ve"), (" 're", "'re"),
    ];

    readonly StringBuilder[] _held = Rules.Select(_ => new StringBuilder()).ToArray();

    /// <summary>Feeds text; returns what is now certain. With <paramref name="final"/> everything held comes out.</summary>
    public string Process(string text, bool final)
    {
        for (var stage = 0; stage < Rules.Length; stage++)
            text = Replace(stage, text, final);
        return text;
    }

    string Replace(int stage, string input, bool final)
    {
        var (pattern, replacement) = Rules[stage];
        var s = _held[stage].Append(input).ToString();
        var output = new StringBuilder(s.Length);
        var pos = 0;
        for (int found; (found = s.IndexOf(pattern, pos, StringComparison.Ordinal)) >= 0; pos = found + pattern.Length)
            output.Append(s, pos, found - pos).Append(replacement);
        // A match starting in the last pattern.Length - 1 chars may still complete with the next input.
        var keepFrom = final ? s.Length : Math.Max(pos, s.Length - (pattern.Length - 1));
        output.Append(s, pos, keepFrom - pos);
        _held[stage].Clear().Append(s, keepFrom, s.Length - keepFrom);
        return output.ToString();
    }
}
