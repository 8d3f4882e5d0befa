using MiniGemini.Text;

namespace MiniGemini;

/// <summary>
/// A piece of a rendered prompt. Scaffold is what the conversation template writes (role headers, separators,
/// BOS/EOS and other control tokens, image slots); content is what a person wrote (system prompt, user and assistant
/// messages). Content is always encoded literally: <c>&lt;/s&gt;</c> or <c>&lt;|eot_id|&gt;</c> typed in a message
/// becomes ordinary pieces, never the control token, as SentencePiece itself encodes such text.
/// </summary>
/// <param name="Text">The text of the piece.</param>
/// <param name="IsContent">True for content (encoded literally), false for scaffold.</param>
public readonly record struct PromptSegment(string Text, bool IsContent)
{
    /// <summary>Scaffold text.</summary>
    public static PromptSegment Scaffold(string text) => new(text, false);

    /// <summary>Content text.</summary>
    public static PromptSegment Content(string text) => new(text, true);

    /// <summary>The whole prompt as one string.</summary>
    public static string Join(IEnumerable<PromptSegment> segments) => string.Concat(segments.Select(s => s.Text));
}
