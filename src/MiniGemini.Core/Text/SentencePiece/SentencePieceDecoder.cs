using System.Text;

namespace MiniGemini.Text.SentencePiece;

/// <summary>
/// SentencePiece's <c>Decode</c> as a stream: ▁ becomes a space; the first piece's leading ▁ (the dummy prefix) is
/// dropped while nothing has been written yet; runs of byte pieces are reassembled into UTF-8, each malformed
/// byte becoming U+FFFD exactly as SentencePiece's <c>DecodeUTF8</c> rules decide. Bytes that may still start a
/// character are held until the next piece decides them.
/// </summary>
internal sealed class SentencePieceDecoder(SentencePieceModel model) : IIncrementalDecoder
{
    readonly List<byte> _pending = new(4);
    bool _atStart = true; // nothing written and no dummy prefix dropped yet: a leading ▁ is the dummy prefix

    public void Append(int id, StringBuilder output)
    {
        if (model.IsByte(id))
        {
            _pending.Add(model.ByteOf(id));
            DrainBytes(output, final: false);
            return;
        }
        DrainBytes(output, final: true);

        var piece = model.Pieces[id].AsSpan();
        if (_atStart && (model.AddDummyPrefix || model.RemoveExtraWhitespaces)
            && piece.Length > 0 && piece[0] == SentencePieceModel.SpaceSymbol)
        {
            piece = piece[1..];
            // With remove_extra_whitespaces every leading space is dropped, not just one.
            if (!model.RemoveExtraWhitespaces) _atStart = false;
        }
        foreach (var c in piece) output.Append(c == SentencePieceModel.SpaceSymbol ? ' ' : c);
        if (!piece.IsEmpty) _atStart = false;
    }

    public void AppendLiteral(string text, StringBuilder output)
    {
        DrainBytes(output, final: true);
        output.Append(text);
        if (text.Length > 0) _atStart = false;
    }

    public void Flush(StringBuilder output) => DrainBytes(output, final: true);

    void DrainBytes(StringBuilder output, bool final)
    {
        var consumedTotal = 0;
        while (consumedTotal < _pending.Count)
        {
            var status = Utf8Rules.DecodeOne(_pending, consumedTotal, final, out var codePoint, out var consumed);
            if (status == Utf8Rules.Status.NeedMore) break;
            if (status == Utf8Rules.Status.Valid) output.Append(char.ConvertFromUtf32(codePoint));
            else output.Append('\uFFFD');
            _atStart = false;
            consumedTotal += consumed;
        }
        _pending.RemoveRange(0, consumedTotal);
    }
}

/// <summary>SentencePiece's <c>string_util::DecodeUTF8</c>: strict UTF-8, one U+FFFD per malformed byte.</summary>
internal static class Utf8Rules
{
    public enum Status { Valid, Invalid, NeedMore }

    public static Status DecodeOne(IReadOnlyList<byte> bytes, int start, bool final, out int codePoint, out int consumed)
    {
        codePoint = 0;
        consumed = 1;
        var b0 = bytes[start];
        if (b0 < 0x80)
        {
            codePoint = b0;
            return Status.Valid;
        }
        var (needed, initial, minimum) = (b0 & 0xE0) == 0xC0 ? (2, b0 & 0x1F, 0x80)
            : (b0 & 0xF0) == 0xE0 ? (3, b0 & 0x0F, 0x800)
            : (b0 & 0xF8) == 0xF0 ? (4, b0 & 0x07, 0x10000)
            : (0, 0, 0);
        if (needed == 0) return Status.Invalid;
        if (bytes.Count - start < needed) return final ? Status.Invalid : Status.NeedMore;

        var cp = initial;
        for (var i = 1; i < needed; i++)
        {
            var b = bytes[start + i];
            if ((b & 0xC0) != 0x80) return Status.Invalid;
            cp = (cp << 6) | (b & 0x3F);
        }
        if (cp < minimum || cp > 0x10FFFF || cp is >= 0xD800 and < 0xE000) return Status.Invalid;
        codePoint = cp;
        consumed = needed;
        return Status.Valid;
    }
}
