using System.Text;

namespace MiniGemini.Text.SentencePiece;

/// <summary>
/// Just enough of the protobuf wire format to read a SentencePiece ModelProto: varints, fixed32/64 and
/// length-delimited fields. Every read is bounds-checked; a malformed file raises <see cref="ModelLoadException"/>.
/// </summary>
internal ref struct ProtoReader
{
    readonly ReadOnlySpan<byte> _data;
    readonly string _file;
    readonly int _base; // offset of _data in the file, for messages
    int _pos;

    public ProtoReader(ReadOnlySpan<byte> data, string file, int baseOffset = 0)
    {
        _data = data;
        _file = file;
        _base = baseOffset;
        _pos = 0;
    }

    public readonly bool AtEnd => _pos >= _data.Length;

    /// <summary>Reads the next field key; wire type 3/4 (groups) and field number 0 are rejected.</summary>
    public (int Field, int WireType) ReadKey()
    {
        var key = ReadVarint();
        var field = (int)(key >> 3);
        var wire = (int)(key & 7);
        if (field <= 0 || wire is not (0 or 1 or 2 or 5))
            throw Corrupt($"invalid field key {key}");
        return (field, wire);
    }

    public ulong ReadVarint()
    {
        ulong value = 0;
        for (var shift = 0; shift < 64; shift += 7)
        {
            if (_pos >= _data.Length) throw Corrupt("truncated varint");
            var b = _data[_pos++];
            value |= (ulong)(b & 0x7F) << shift;
            if (b < 0x80) return value;
        }
        throw Corrupt("varint longer than 10 bytes");
    }

    /// <summary>int32 fields are sign-extended to 64 bits on the wire (negative ids such as pad_id = -1).</summary>
    public int ReadInt32() => unchecked((int)(long)ReadVarint());

    public bool ReadBool() => ReadVarint() != 0;

    public float ReadFloat()
    {
        var bytes = Take(4);
        return BitConverter.Int32BitsToSingle(System.Buffers.Binary.BinaryPrimitives.ReadInt32LittleEndian(bytes));
    }

    /// <summary>A length-delimited payload and its offset in the file.</summary>
    public ReadOnlySpan<byte> ReadLengthDelimited(out int offset)
    {
        var length = ReadVarint();
        if (length > (ulong)(_data.Length - _pos)) throw Corrupt($"field length {length} runs past the end");
        offset = _base + _pos;
        return Take((int)length);
    }

    public string ReadString()
    {
        var bytes = ReadLengthDelimited(out var offset);
        try
        {
            return Strict.GetString(bytes);
        }
        catch (DecoderFallbackException e)
        {
            throw new ModelLoadException($"{_file}: invalid UTF-8 in a string field at byte {offset}.", _file, inner: e);
        }
    }

    public void Skip(int wireType)
    {
        switch (wireType)
        {
            case 0: ReadVarint(); break;
            case 1: Take(8); break;
            case 2: ReadLengthDelimited(out _); break;
            case 5: Take(4); break;
            default: throw Corrupt($"unsupported wire type {wireType}");
        }
    }

    public readonly ModelLoadException Corrupt(string what) =>
        new($"{_file}: not a valid SentencePiece model ({what} at byte {_base + _pos}).", _file);

    ReadOnlySpan<byte> Take(int count)
    {
        if (count > _data.Length - _pos) throw Corrupt("truncated field");
        var span = _data.Slice(_pos, count);
        _pos += count;
        return span;
    }

    static readonly UTF8Encoding Strict = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);
}
