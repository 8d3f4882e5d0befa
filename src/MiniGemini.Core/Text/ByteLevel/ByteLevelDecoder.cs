using System.Text;

namespace MiniGemini.Text.ByteLevel;

/// <summary>
/// Byte-level decoding as Hugging Face does it: concatenate the tokens' bytes and read them as UTF-8, each
/// maximal malformed subsequence becoming U+FFFD. A stateful UTF-8 decoder holds an unfinished character
/// between tokens, so no delta ever splits one.
/// </summary>
internal sealed class ByteLevelDecoder(ByteLevelBpe model) : IIncrementalDecoder
{
    readonly Decoder _utf8 = new UTF8Encoding(false, throwOnInvalidBytes: false).GetDecoder();

    public void Append(int id, StringBuilder output) => Write(model.BytesOf(id), output, flush: false);

    public void AppendLiteral(string text, StringBuilder output) => Write(Encoding.UTF8.GetBytes(text), output, flush: false);

    public void Flush(StringBuilder output) => Write([], output, flush: true);

    void Write(ReadOnlySpan<byte> bytes, StringBuilder output, bool flush)
    {
        var count = _utf8.GetCharCount(bytes, flush); // does not change the decoder's state
        Span<char> chars = count <= 256 ? stackalloc char[count] : new char[count];
        var written = _utf8.GetChars(bytes, chars, flush);
        output.Append(chars[..written]);
    }
}
