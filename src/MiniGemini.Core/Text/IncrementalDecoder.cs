using System.Text;

namespace MiniGemini.Text;

/// <summary>
/// Turns ids into text one at a time. Full decoding is this run to the end, so a stream of deltas always
/// concatenates to the full decode. Implementations hold back bytes that do not yet form a whole character.
/// </summary>
internal interface IIncrementalDecoder
{
    /// <summary>Appends the text of a vocabulary id (not a special token) that is now complete.</summary>
    void Append(int id, StringBuilder output);

    /// <summary>Appends a special or added token rendered as its literal text.</summary>
    void AppendLiteral(string text, StringBuilder output);

    /// <summary>End of input: whatever bytes are still held become replacement characters.</summary>
    void Flush(StringBuilder output);
}

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
