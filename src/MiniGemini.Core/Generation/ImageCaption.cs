namespace MiniGemini.Generation;

/// <summary>
/// Mini-Gemini's image-generation convention: a request appends <c>" &lt;GEN&gt;"</c> to the user text, and the model
/// answers with a diffusion prompt wrapped in <c>&lt;h&gt;…&lt;/h&gt;</c>.
/// </summary>
internal static class ImageCaption
{
    /// <summary>The literal suffix MGM appends to the user's text to ask for an image.</summary>
    public const string GenerationSuffix = " <GEN>";

    /// <summary>
    /// The diffusion prompt in an answer: the content of the <b>last complete</b> <c>&lt;h&gt;…&lt;/h&gt;</c> pair, trimmed; null
    /// when the answer has no complete pair or the pair is empty. On well-formed answers this is what MGM's CLI takes
    /// (<c>answer.split("&lt;/h&gt;")[-2].split("&lt;h&gt;")[-1]</c>); where a <c>&lt;/h&gt;</c> has no <c>&lt;h&gt;</c> of its own
    /// (<c>"&lt;h&gt;a&lt;/h&gt;b&lt;/h&gt;"</c>) the CLI returns the stray text (<c>b</c>), this the last real pair (<c>a</c>).
    /// </summary>
    public static string? Extract(string answer)
    {
        ArgumentNullException.ThrowIfNull(answer);
        // Each </h> closes the text since the previous </h>; the last such segment holding an <h> is the last pair.
        for (int close = answer.LastIndexOf("</h>", StringComparison.Ordinal); close >= 0;)
        {
            int previous = close == 0 ? -1 : answer.LastIndexOf("</h>", close - 1, StringComparison.Ordinal);
            int open = answer.LastIndexOf("<h>", close, StringComparison.Ordinal);
            if (open > previous)
            {
                var caption = answer[(open + 3)..close].Trim();
                return caption.Length == 0 ? null : caption;
            }
            close = previous;
        }
        return null;
    }
}
