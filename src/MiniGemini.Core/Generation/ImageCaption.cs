namespace MiniGemini.Generation;

/// <summary>
/// Mini-Gemini's image-generation convention: a request appends <c>" &lt;GEN&gt;"</c> to the user text, and the model
/// answers with a diffusion prompt wrapped in <c>&lt;h&gt;…&lt;/h&gt;</c>.
/// </summary>
public static class ImageCaption
{
    /// <summary>The literal suffix MGM appends to the user's text to ask for an image.</summary>
    public const string GenerationSuffix = " <GEN>";

    /// <summary>
    /// The diffusion prompt in an answer: the content of the <b>last complete</b> <c>&lt;h&gt;…&lt;/h&gt;</c> pair (as
    /// MGM's CLI extracts it: <c>answer.split("&lt;/h&gt;")[-2].split("&lt;h&gt;")[-1]</c>), trimmed; null when the answer has
    /// no complete pair or the pair is empty.
    /// </summary>
    public static string? Extract(string answer)
    {
        ArgumentNullException.ThrowIfNull(answer);
        int close = answer.LastIndexOf("</h>", StringComparison.Ordinal);
        if (close < 0) return null;
        int open = answer.LastIndexOf("<h>", close, StringComparison.Ordinal);
        if (open < 0) return null;
        var caption = answer[(open + 3)..close].Trim();
        return caption.Length == 0 ? null : caption;
    }

    /// <summary>The answer's text before its first <c>&lt;h&gt;</c>, trimmed (what MGM's worker shows beside the image).</summary>
    public static string TextBeforeCaption(string answer)
    {
        ArgumentNullException.ThrowIfNull(answer);
        int open = answer.IndexOf("<h>", StringComparison.Ordinal);
        return (open < 0 ? answer : answer[..open]).Trim();
    }
}
