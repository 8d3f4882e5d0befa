using System.Text;
using MiniGemini.Text;

namespace MiniGemini;

/// <summary>
/// Decodes generated ids one at a time into text deltas. A delta never splits a character: bytes of an unfinished
/// UTF-8 sequence (byte-fallback pieces, byte-level tokens) are held until the character is complete, and the
/// leading-space rule of SentencePiece is applied once, at the start of the stream. The deltas of a whole stream,
/// including <see cref="Flush"/>, concatenate to exactly <see cref="MiniGeminiTokenizer.Decode"/> of the same ids.
/// Create one per generated sequence with <see cref="MiniGeminiTokenizer.CreateStreamingDecoder"/>; not thread-safe.
/// </summary>
public sealed class StreamingTextDecoder
{
    readonly MiniGeminiTokenizer _tokenizer;
    readonly bool _skipSpecialTokens;
    readonly IIncrementalDecoder _decoder;
    readonly SpaceCleanup? _cleanup;
    readonly StringBuilder _scratch = new();

    internal StreamingTextDecoder(MiniGeminiTokenizer tokenizer, IIncrementalDecoder decoder, bool skipSpecialTokens, bool cleanUpSpaces)
    {
        _tokenizer = tokenizer;
        _decoder = decoder;
        _skipSpecialTokens = skipSpecialTokens;
        _cleanup = cleanUpSpaces ? new SpaceCleanup() : null;
    }

    /// <summary>Adds one id; returns the text it completes (often empty while a character is unfinished).</summary>
    /// <exception cref="ArgumentOutOfRangeException">The id is not in the vocabulary (e.g. the −200 image placeholder).</exception>
    public string Append(int tokenId)
    {
        _scratch.Clear();
        _tokenizer.DecodeInto(_decoder, tokenId, _skipSpecialTokens, _scratch);
        return Finish(final: false);
    }

    /// <summary>Ends the stream: returns what was held back (an unfinished character becomes U+FFFD).</summary>
    public string Flush()
    {
        _scratch.Clear();
        _decoder.Flush(_scratch);
        return Finish(final: true);
    }

    string Finish(bool final)
    {
        var text = _scratch.ToString();
        return _cleanup is null ? text : _cleanup.Process(text, final);
    }
}
