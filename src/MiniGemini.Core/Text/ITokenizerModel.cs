namespace MiniGemini.Text;

/// <summary>The encoding model behind <see cref="MiniGeminiTokenizer"/>: plain text in, ids out.</summary>
internal interface ITokenizerModel
{
    /// <summary>Number of ids in the model's own vocabulary (added tokens may extend it).</summary>
    int Count { get; }

    /// <summary>
    /// Encodes text that contains no special tokens, appending ids to <paramref name="output"/>.
    /// <paramref name="isFirstSegment"/> is false for text that follows a special token in the same call.
    /// </summary>
    void Encode(string text, bool isFirstSegment, List<int> output);

    int? TokenToId(string token);

    string? IdToToken(int id);

    IIncrementalDecoder CreateDecoder();
}
