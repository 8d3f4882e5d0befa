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
