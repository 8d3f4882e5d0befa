using System.Buffers.Binary;
using System.Runtime.InteropServices;
using System.Text;

namespace MiniGemini.Benchmarks.ShapedCheckpoints;

/// <summary>Receives a tensor's bytes chunk by chunk.</summary>
public delegate void ByteSink(ReadOnlySpan<byte> bytes);

/// <summary>
/// The bytes of one tensor, produced front to back in chunks of any size: a SplitMix64 stream seeded from the run's
/// seed and the tensor's key, so that a key has the same values whatever file, shard or order it is written in, and a
/// reader can regenerate them to compare. Every call but the last must ask for a multiple of 8 bytes (one random word
/// covers 8 bytes), which keeps the values independent of the chunk size.
/// </summary>
public sealed class TensorValues
{
    readonly TensorSpec _spec;
    readonly long _totalBytes;
    ulong _state;
    long _written;

    /// <summary>The values of <paramref name="spec"/> for run seed <paramref name="seed"/>.</summary>
    public TensorValues(TensorSpec spec, ulong seed)
    {
        _spec = spec;
        _totalBytes = spec.Bytes;
        _state = SplitMix(seed ^ Fnv1a(spec.Key));
    }

    /// <summary>Bytes not produced yet.</summary>
    public long Remaining => _totalBytes - _written;

    /// <summary>Fills <paramref name="destination"/> with the next bytes (little-endian).</summary>
    /// <exception cref="ArgumentException">More bytes than remain, or a chunk that is not a multiple of 8 before the end.</exception>
    public void Fill(Span<byte> destination)
    {
        if (destination.Length > Remaining) throw new ArgumentException($"{_spec.Key}: {destination.Length} bytes asked, {Remaining} remain.", nameof(destination));
        if (destination.Length % 8 != 0 && destination.Length != Remaining)
            throw new ArgumentException($"{_spec.Key}: a chunk before the last must be a multiple of 8 bytes.", nameof(destination));
        switch (_spec.Init.Kind)
        {
            case InitKind.Uniform when _spec.Type == ElementType.BFloat16: FillUniformBFloat16(destination); break;
            case InitKind.Uniform when _spec.Type == ElementType.Float32: FillUniformFloat32(destination); break;
            case InitKind.Constant: FillConstant(destination); break;
            case InitKind.Positions when _spec.Type == ElementType.Int64: FillPositions(destination); break;
            default: throw new NotSupportedException($"{_spec.Key}: {_spec.Init.Kind} values of type {_spec.Type}.");
        }
        _written += destination.Length;
    }

    /// <summary>Bytes produced per <see cref="CopyTo"/> step: large enough for few system calls, small next to the memory of the machine.</summary>
    public const int ChunkBytes = 8 << 20;

    /// <summary>Produces all remaining bytes into <paramref name="sink"/>, through <paramref name="buffer"/> (a multiple of 8 bytes).</summary>
    public void CopyTo(ByteSink sink, byte[] buffer)
    {
        if (buffer.Length % 8 != 0) throw new ArgumentException("The buffer must be a multiple of 8 bytes.", nameof(buffer));
        while (Remaining > 0)
        {
            var chunk = buffer.AsSpan(0, (int)Math.Min(buffer.Length, Remaining));
            Fill(chunk);
            sink(chunk);
        }
    }

    /// <summary>All bytes of a (small) tensor at once.</summary>
    public static byte[] All(TensorSpec spec, ulong seed)
    {
        var bytes = new byte[spec.Bytes];
        new TensorValues(spec, seed).Fill(bytes);
        return bytes;
    }

    /// <summary>
    /// 65536 bf16 bit patterns spread evenly over ±0.02, one per 16 random bits: four elements per random word,
    /// finer than bf16's own spacing there, and a lookup instead of a float conversion.
    /// </summary>
    static readonly ushort[] UniformBFloat16Table = Enumerable.Range(0, 1 << 16)
        .Select(i => BFloat16Bits((float)(((i + 0.5) / 65536.0 * 2 - 1) * Init.UniformBound)))
        .ToArray();

    void FillUniformBFloat16(Span<byte> destination)
    {
        int words = destination.Length / 8;
        var output = MemoryMarshal.Cast<byte, ulong>(destination[..(words * 8)]);
        for (int i = 0; i < output.Length; i++) output[i] = FourBFloat16(Next());
        FillTail(destination[(words * 8)..], FourBFloat16);
    }

    /// <summary>Four bf16 values from the four 16-bit parts of a word.</summary>
    static ulong FourBFloat16(ulong r)
    {
        var table = UniformBFloat16Table;
        return table[(int)(r & 0xFFFF)] | ((ulong)table[(int)((r >> 16) & 0xFFFF)] << 16)
             | ((ulong)table[(int)((r >> 32) & 0xFFFF)] << 32) | ((ulong)table[(int)(r >> 48)] << 48);
    }

    void FillUniformFloat32(Span<byte> destination)
    {
        int words = destination.Length / 8;
        var output = MemoryMarshal.Cast<byte, ulong>(destination[..(words * 8)]);
        for (int i = 0; i < output.Length; i++) output[i] = TwoFloats(Next());
        FillTail(destination[(words * 8)..], TwoFloats);
    }

    /// <summary>Two fp32 values from the two 24-bit halves of a word (24 bits: a float's whole mantissa).</summary>
    static ulong TwoFloats(ulong r)
    {
        const double scale = 2 * Init.UniformBound / (1 << 24);
        float a = (float)(((r >> 8) & 0xFFFFFF) * scale - Init.UniformBound);
        float b = (float)((r >> 40) * scale - Init.UniformBound);
        return (uint)BitConverter.SingleToInt32Bits(a) | ((ulong)(uint)BitConverter.SingleToInt32Bits(b) << 32);
    }

    /// <summary>The last bytes of a tensor that end inside a word: one more word, cut.</summary>
    void FillTail(Span<byte> tail, Func<ulong, ulong> word)
    {
        if (tail.IsEmpty) return;
        Span<byte> bytes = stackalloc byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(bytes, word(Next()));
        bytes[..tail.Length].CopyTo(tail);
    }

    void FillConstant(Span<byte> destination)
    {
        Span<byte> element = stackalloc byte[8];
        int size = _spec.Type.Size();
        switch (_spec.Type)
        {
            case ElementType.BFloat16: BinaryPrimitives.WriteUInt16LittleEndian(element, BFloat16Bits((float)_spec.Init.Value)); break;
            case ElementType.Float32: BinaryPrimitives.WriteSingleLittleEndian(element, (float)_spec.Init.Value); break;
            case ElementType.Int64: BinaryPrimitives.WriteInt64LittleEndian(element, (long)_spec.Init.Value); break;
        }
        // Every chunk starts on an element boundary (8 is a multiple of each size), so the pattern repeats from its start.
        for (int at = 0; at < destination.Length; at += size) element[..size].CopyTo(destination[at..]);
    }

    void FillPositions(Span<byte> destination)
    {
        long first = _written / 8;
        for (int i = 0; i < destination.Length / 8; i++)
            BinaryPrimitives.WriteInt64LittleEndian(destination[(i * 8)..], first + i);
    }

    ulong Next()
    {
        _state += 0x9E3779B97F4A7C15UL;
        return Mix(_state);
    }

    static ulong SplitMix(ulong x) => Mix(x + 0x9E3779B97F4A7C15UL);

    static ulong Mix(ulong z)
    {
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }

    static ulong Fnv1a(string key)
    {
        ulong hash = 0xCBF29CE484222325UL;
        foreach (byte b in Encoding.UTF8.GetBytes(key)) hash = (hash ^ b) * 0x100000001B3UL;
        return hash;
    }

    /// <summary>fp32 → bf16 bits, rounding to nearest even (as torch's conversion does).</summary>
    public static ushort BFloat16Bits(float value)
    {
        uint bits = (uint)BitConverter.SingleToInt32Bits(value);
        if (float.IsNaN(value)) return 0x7FC0;
        uint rounding = 0x7FFF + ((bits >> 16) & 1);
        return (ushort)((bits + rounding) >> 16);
    }
}
