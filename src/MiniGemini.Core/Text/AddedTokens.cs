namespace MiniGemini.Text;

/// <summary>
/// A token matched whole in input text before the model sees it (Hugging Face "added tokens": BOS/EOS, chat
/// markers such as <c>&lt;|eot_id|&gt;</c>). <see cref="Special"/> tokens are dropped when decoding skips special
/// tokens. <see cref="LStrip"/>/<see cref="RStrip"/> remove whitespace on that side of the token, as HF does.
/// </summary>
internal sealed record AddedToken(string Content, int Id, bool Special, bool LStrip = false, bool RStrip = false);

/// <summary>Splits text into plain segments and added tokens, leftmost-longest match first.</summary>
internal sealed class AddedTokenSplitter
{
    readonly PrefixMatcher<AddedToken> _matcher;

    public AddedTokenSplitter(IEnumerable<AddedToken> tokens) => _matcher = new(tokens, t => t.Content);

    /// <summary>The pieces of <paramref name="text"/> in order: a string for plain text, an <see cref="AddedToken"/> otherwise.</summary>
    /// <param name="text">The text.</param>
    /// <param name="matches">Whether a token may be matched at this start with this length; null: every token anywhere.</param>
    public List<object> Split(string text, Func<AddedToken, int, bool>? matches = null)
    {
        var parts = new List<object>();
        var segmentStart = 0;
        var stripNextLeading = false;
        for (var pos = 0; pos < text.Length;)
        {
            var token = _matcher.Match(text.AsSpan(pos));
            if (token is null || (matches is not null && !matches(token, pos)))
            {
                pos++;
                continue;
            }
            AddSegment(parts, text[segmentStart..pos], stripNextLeading, token.LStrip);
            parts.Add(token);
            stripNextLeading = token.RStrip;
            pos += token.Content.Length;
            segmentStart = pos;
        }
        AddSegment(parts, text[segmentStart..], stripNextLeading, trimEnd: false);
        return parts;
    }

    static void AddSegment(List<object> parts, string segment, bool trimStart, bool trimEnd)
    {
        if (trimStart) segment = segment.TrimStart();
        if (trimEnd) segment = segment.TrimEnd();
        if (segment.Length > 0) parts.Add(segment);
    }
}
