using MiniGemini.Text;

namespace MiniGemini;

/// <summary>
/// MGM's <c>tokenizer_image_token</c> (<c>mgm/mm_utils.py</c>): the prompt is split on the literal
/// <see cref="ImageToken"/>, each chunk is tokenized on its own with the tokenizer's defaults (so SentencePiece's
/// dummy prefix applies to every chunk), BOS is kept once at the start and <see cref="ImageTokenIndex"/> stands
/// between chunks. The vision features are spliced in where the placeholders stand, elsewhere.
/// </summary>
public static class ImageSlotTokenizer
{
    /// <summary>The placeholder id for one image's features (<c>IMAGE_TOKEN_INDEX</c>).</summary>
    public const int ImageTokenIndex = -200;

    /// <summary>The text that marks an image in a prompt (<c>DEFAULT_IMAGE_TOKEN</c>).</summary>
    public const string ImageToken = "<image>";

    /// <summary>
    /// Tokenizes a raw prompt, with one <see cref="ImageTokenIndex"/> per <see cref="ImageToken"/>. The whole string is
    /// treated as scaffold: special tokens written in it are matched (as the reference's tokenizer does), so never pass
    /// text a user typed here; render it with <see cref="ConversationTemplate.Render"/> instead.
    /// </summary>
    public static int[] Tokenize(MiniGeminiTokenizer tokenizer, string prompt)
    {
        ArgumentNullException.ThrowIfNull(prompt);
        return Tokenize(tokenizer, [PromptSegment.Scaffold(prompt)]);
    }

    /// <summary>
    /// Tokenizes a structured prompt: image slots and special tokens are recognised in its scaffold only; content is
    /// encoded literally, so a <c>&lt;image&gt;</c> or <c>&lt;/s&gt;</c> in a message stays text.
    /// </summary>
    public static int[] Tokenize(MiniGeminiTokenizer tokenizer, IReadOnlyList<PromptSegment> prompt)
    {
        ArgumentNullException.ThrowIfNull(tokenizer);
        ArgumentNullException.ThrowIfNull(prompt);
        var chunks = SplitAtImages(prompt).Select(chunk => tokenizer.Encode(chunk, tokenizer.AddsBosByDefault)).ToArray();

        var ids = new List<int>();
        // As in the reference: when the first chunk starts with BOS, keep it once and drop the first id of every chunk.
        var offset = 0;
        if (chunks[0].Length > 0 && chunks[0][0] == tokenizer.BosId)
        {
            offset = 1;
            ids.Add(chunks[0][0]);
        }
        for (var i = 0; i < chunks.Length; i++)
        {
            if (i > 0) ids.Add(ImageTokenIndex);
            ids.AddRange(chunks[i].Skip(offset));
        }
        return ids.ToArray();
    }

    /// <summary>The prompt's pieces between image slots (one more chunk than slots); slots are found in scaffold only.</summary>
    static List<List<PromptSegment>> SplitAtImages(IReadOnlyList<PromptSegment> prompt)
    {
        var chunks = new List<List<PromptSegment>> { new() };
        foreach (var segment in prompt)
        {
            if (segment.IsContent)
            {
                chunks[^1].Add(segment);
                continue;
            }
            var parts = segment.Text.Split(ImageToken);
            for (var k = 0; k < parts.Length; k++)
            {
                if (k > 0) chunks.Add([]);
                chunks[^1].Add(PromptSegment.Scaffold(parts[k]));
            }
        }
        return chunks;
    }

    /// <summary>Number of <see cref="ImageTokenIndex"/> placeholders in an id sequence.</summary>
    public static int CountImages(IEnumerable<int> ids) => ids.Count(id => id == ImageTokenIndex);
}
