namespace MiniGemini.Text;

/// <summary>
/// Longest-match lookup of a fixed set of items by their text, at the start of a span: SentencePiece's
/// <c>PrefixMatcher</c> for user-defined pieces, and the match of added tokens in input text. Candidates are grouped
/// by first character and tried longest first.
/// </summary>
internal sealed class PrefixMatcher<T> where T : class
{
    readonly Dictionary<char, (string Text, T Item)[]> _byFirstChar;

    public PrefixMatcher(IEnumerable<T> items, Func<T, string> textOf) =>
        _byFirstChar = items.Select(item => (Text: textOf(item), Item: item)).Where(c => c.Text.Length > 0)
            .GroupBy(c => c.Text[0])
            .ToDictionary(g => g.Key, g => g.OrderByDescending(c => c.Text.Length).ToArray());

    /// <summary>The item with the longest text that <paramref name="text"/> starts with, or null.</summary>
    public T? Match(ReadOnlySpan<char> text)
    {
        if (text.IsEmpty || !_byFirstChar.TryGetValue(text[0], out var candidates)) return null;
        foreach (var (word, item) in candidates)
            if (text.StartsWith(word, StringComparison.Ordinal)) return item;
        return null;
    }
}
