using System.Buffers.Binary;
using System.Text;

namespace MiniGemini.Text.SentencePiece;

/// <summary>
/// The writing half of <see cref="ProtoReader"/>: protobuf fields as varints, fixed32 floats and length-delimited
/// strings and messages, appended in the order written.
/// </summary>
internal sealed class ProtoWriter
{
    const int WireVarint = 0, WireLengthDelimited = 2, WireFixed32 = 5;

    readonly MemoryStream _buffer = new();

    public void WriteUInt64(int field, ulong value)
    {
        WriteKey(field, WireVarint);
        WriteRawVarint(value);
    }

    /// <summary>An int32 field: negative values are sign-extended to ten bytes, as protobuf requires (pad_id = -1).</summary>
    public void WriteInt32(int field, int value) => WriteUInt64(field, unchecked((ulong)(long)value));

    public void WriteBool(int field, bool value) => WriteUInt64(field, value ? 1UL : 0UL);

    public void WriteFloat(int field, float value)
    {
        WriteKey(field, WireFixed32);
        Span<byte> bytes = stackalloc byte[4];
        BinaryPrimitives.WriteInt32LittleEndian(bytes, BitConverter.SingleToInt32Bits(value));
        _buffer.Write(bytes);
    }

    public void WriteString(int field, string value) => WriteBytes(field, Encoding.UTF8.GetBytes(value));

    public void WriteBytes(int field, ReadOnlySpan<byte> value)
    {
        WriteKey(field, WireLengthDelimited);
        WriteRawVarint((ulong)value.Length);
        _buffer.Write(value);
    }

    /// <summary>A nested message: the bytes written to <paramref name="message"/>, length-delimited.</summary>
    public void WriteMessage(int field, ProtoWriter message) => WriteBytes(field, message.ToArray());

    public byte[] ToArray() => _buffer.ToArray();

    void WriteKey(int field, int wireType)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(field);
        WriteRawVarint(((ulong)field << 3) | (uint)wireType);
    }

    void WriteRawVarint(ulong value)
    {
        while (value >= 0x80)
        {
            _buffer.WriteByte((byte)(value | 0x80));
            value >>= 7;
        }
        _buffer.WriteByte((byte)value);
    }
}
