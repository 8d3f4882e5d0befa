namespace MiniGemini.Text.SentencePiece;

/// <summary>String → id lookup that accepts spans (no substring allocation on .NET 9+).</summary>
internal sealed class PieceLookup
{
    readonly Dictionary<string, int> _map;
#if NET9_0_OR_GREATER
    readonly Dictionary<string, int>.AlternateLookup<ReadOnlySpan<char>> _spans;
#endif

    public PieceLookup(Dictionary<string, int> map)
    {
        _map = map;
#if NET9_0_OR_GREATER
        _spans = map.GetAlternateLookup<ReadOnlySpan<char>>();
#endif
    }

    public bool TryGet(ReadOnlySpan<char> key, out int id) =>
#if NET9_0_OR_GREATER
        _spans.TryGetValue(key, out id);
#else
        _map.TryGetValue(key.ToString(), out id);
#endif
}

/// <summary>
/// Longest-match lookup of a fixed set of strings at a position (SentencePiece's <c>PrefixMatcher</c> for
/// user-defined pieces). Candidates are grouped by first character and tried longest first.
/// </summary>
internal sealed class PrefixMatcher
{
    readonly Dictionary<char, string[]> _byFirstChar;

    public PrefixMatcher(IEnumerable<string> words) =>
        _byFirstChar = words.Where(w => w.Length > 0).Distinct(StringComparer.Ordinal)
            .GroupBy(w => w[0])
            .ToDictionary(g => g.Key, g => g.OrderByDescending(w => w.Length).ToArray());

    /// <summary>Length of the longest word that <paramref name="text"/> starts with, or 0.</summary>
    public int Match(ReadOnlySpan<char> text)
    {
        if (text.IsEmpty || !_byFirstChar.TryGetValue(text[0], out var candidates)) return 0;
        foreach (var word in candidates)
            if (text.StartsWith(word, StringComparison.Ordinal)) return word.Length;
        return 0;
    }
}
