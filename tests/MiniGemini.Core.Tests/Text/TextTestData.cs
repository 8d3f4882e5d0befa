using System.Text;
using FsCheck;
using FsCheck.Fluent;
using MiniGemini.Tests.Parity;
using MiniGemini.Text;

namespace MiniGemini.Tests.Text;

/// <summary>Tokenizers loaded once from the bundled fixtures, and generators for property tests.</summary>
internal static class TextTestData
{
    static readonly Lazy<MiniGeminiTokenizer> SmallSp = new(() => MiniGeminiTokenizer.FromFolder(FixtureCatalog.Bundled("tokenizer-sp")));
    static readonly Lazy<MiniGeminiTokenizer> MistralSp = new(() => MiniGeminiTokenizer.FromFolder(FixtureCatalog.Bundled("tokenizer-mistral-real")));

    /// <summary>tokenizer-sp: 400 pieces, byte fallback, <c>&lt;image&gt;</c> user-defined.</summary>
    public static MiniGeminiTokenizer Small => SmallSp.Value;

    /// <summary>tokenizer-mistral-real: the real 32k Mistral vocabulary.</summary>
    public static MiniGeminiTokenizer Mistral => MistralSp.Value;

    public static Config Quick(int maxTests = 300) => Config.QuickThrowOnFailure.WithMaxTest(maxTests);

    /// <summary>
    /// Valid Unicode strings (no lone surrogates) mixing ASCII words and spaces, whitespace runs, accented
    /// Latin, CJK, emoji and arbitrary code points, so that byte fallback and multi-byte characters are common.
    /// </summary>
    public static Arbitrary<string> UnicodeText()
    {
        var codePoint = Gen.Frequency(
            (30, Gen.Elements("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.,:;!?'-()[]<>|/".Select(c => (int)c).ToArray())),
            (12, Gen.Elements(' ', ' ', '\n', '\t').Select(c => (int)c)),
            (6, Gen.Choose(0xC0, 0x17F)),
            (4, Gen.Choose(0x4E00, 0x9FFF)),
            (4, Gen.Choose(0x1F300, 0x1FAFF)),
            (4, Gen.Choose(0x0, 0xD7FF)),
            (2, Gen.Choose(0xE000, 0x10FFFF)));
        var words = Gen.Elements("Mini-Gemini", " resolution", " the", " <image>\n", " ASSISTANT:", "USER: ", " 漢字", "  ");
        var piece = Gen.Frequency((5, codePoint.Select(char.ConvertFromUtf32)), (1, words));
        return Arb.From(Gen.ListOf(piece).Select(parts => string.Concat(parts)), Shrink);
    }

    /// <summary>Shrinks by dropping whole text elements, so a shrunk string never holds a lone surrogate.</summary>
    static IEnumerable<string> Shrink(string s)
    {
        var elements = new List<string>();
        var e = System.Globalization.StringInfo.GetTextElementEnumerator(s);
        while (e.MoveNext()) elements.Add((string)e.Current);
        for (var i = 0; i < elements.Count; i++)
            yield return string.Concat(elements.Take(i).Concat(elements.Skip(i + 1)));
    }

    /// <summary>True when the string has no unpaired surrogate.</summary>
    public static bool IsWellFormed(string s)
    {
        for (var i = 0; i < s.Length; i++)
        {
            if (char.IsHighSurrogate(s[i]) && i + 1 < s.Length && char.IsLowSurrogate(s[i + 1])) i++;
            else if (char.IsSurrogate(s[i])) return false;
        }
        return true;
    }

    public static bool ContainsSpecialToken(MiniGeminiTokenizer tokenizer, string s) =>
        tokenizer.SpecialTokens.Keys.Any(t => s.Contains(t, StringComparison.Ordinal));

    /// <summary>Streams ids through a fresh decoder; returns the deltas (the flush last).</summary>
    public static List<string> Stream(MiniGeminiTokenizer tokenizer, IEnumerable<int> ids, bool skipSpecialTokens = true)
    {
        var decoder = tokenizer.CreateStreamingDecoder(skipSpecialTokens);
        var deltas = ids.Select(decoder.Append).ToList();
        deltas.Add(decoder.Flush());
        return deltas;
    }

    /// <summary>For properties: true, or a failure that carries the message (FsCheck then shrinks the input).</summary>
    public static bool Expect(bool ok, string message) => ok ? true : throw new Xunit.Sdk.XunitException(message);

    public static string Show(IEnumerable<int> ids) => "[" + string.Join(", ", ids) + "]";

    public static string Escape(string s)
    {
        var sb = new StringBuilder();
        foreach (var c in s) sb.Append(c is < ' ' or > '~' ? $"\\u{(int)c:X4}" : c.ToString());
        return sb.ToString();
    }
}
