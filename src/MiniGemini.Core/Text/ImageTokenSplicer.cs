namespace MiniGemini.Text;

/// <summary>
/// MGM's <c>tokenizer_image_token</c> (<c>mgm/mm_utils.py</c>): the prompt is split on the literal
/// <see cref="ImageToken"/>, each chunk is tokenized on its own with the tokenizer's defaults (so SentencePiece's
/// dummy prefix applies to every chunk), BOS is kept once at the start and <see cref="ImageTokenIndex"/> stands
/// between chunks. The vision features are spliced in where the placeholders stand, elsewhere.
/// </summary>
public static class ImageTokenSplicer
{
    /// <summary>The placeholder id for one image's features (<c>IMAGE_TOKEN_INDEX</c>).</summary>
    public const int ImageTokenIndex = -200;

    /// <summary>The text that marks an image in a prompt (<c>DEFAULT_IMAGE_TOKEN</c>).</summary>
    public const string ImageToken = "<image>";

    /// <summary>Tokenizes a prompt, with one <see cref="ImageTokenIndex"/> per <see cref="ImageToken"/>.</summary>
    public static int[] Tokenize(MiniGeminiTokenizer tokenizer, string prompt)
    {
        ArgumentNullException.ThrowIfNull(tokenizer);
        ArgumentNullException.ThrowIfNull(prompt);
        var chunks = prompt.Split(ImageToken).Select(tokenizer.Encode).ToArray();

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

    /// <summary>Number of <see cref="ImageTokenIndex"/> placeholders in an id sequence.</summary>
    public static int CountImages(IEnumerable<int> ids) => ids.Count(id => id == ImageTokenIndex);
}
