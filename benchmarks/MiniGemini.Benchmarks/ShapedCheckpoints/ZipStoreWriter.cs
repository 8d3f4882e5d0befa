using System.Buffers.Binary;
using System.Text;

namespace MiniGemini.Benchmarks.ShapedCheckpoints;

/// <summary>
/// A zip archive of stored (uncompressed) entries written front to back, laid out as PyTorch's writer lays out a
/// torch.save file: every entry's data starts on a 64-byte boundary, reached by an extra field <c>FB</c> of padding
/// bytes in the local header (so that a loader can map tensors straight from the file). Each entry's CRC-32 is
/// computed while its data streams and patched into the local header afterwards. Archives and entries stay below
/// 4 GiB (no zip64), which holds for the tower files this writes.
/// </summary>
public sealed class ZipStoreWriter : IDisposable
{
    /// <summary>PyTorch's alignment of entry data (<c>kFieldAlignment</c>).</summary>
    public const int Alignment = 64;

    const uint LocalHeaderSignature = 0x04034b50, CentralHeaderSignature = 0x02014b50, EndSignature = 0x06054b50;
    const int LocalHeaderBytes = 30;
    const ushort VersionNeeded = 20;
    const ushort DosDate1980 = (0 << 9) | (1 << 5) | 1; // 1980-01-01, the earliest DOS date: fixed for reproducible files

    sealed record Entry(byte[] Name, long HeaderOffset, uint Crc, long Size);

    readonly StreamingFile _file;
    readonly List<Entry> _entries = [];

    /// <summary>Creates (or replaces) the archive at <paramref name="path"/>.</summary>
    public ZipStoreWriter(string path) => _file = new StreamingFile(path);

    /// <summary>Adds an entry of <paramref name="size"/> bytes whose data <paramref name="writeData"/> streams into the sink it is given.</summary>
    /// <exception cref="NotSupportedException">The entry or the archive would pass 4 GiB (zip64 is not written).</exception>
    public void Add(string name, long size, Action<ByteSink> writeData)
    {
        var nameBytes = Encoding.UTF8.GetBytes(name);
        long headerOffset = _file.Position;
        if (size >= uint.MaxValue || headerOffset + size >= uint.MaxValue)
            throw new NotSupportedException($"Zip entry '{name}' would end past 4 GiB; this writer does not write zip64.");
        int padding = (int)((Alignment - (headerOffset + LocalHeaderBytes + nameBytes.Length + 4) % Alignment) % Alignment);

        var header = new byte[LocalHeaderBytes + nameBytes.Length + 4 + padding];
        var h = header.AsSpan();
        BinaryPrimitives.WriteUInt32LittleEndian(h, LocalHeaderSignature);
        BinaryPrimitives.WriteUInt16LittleEndian(h[4..], VersionNeeded);
        BinaryPrimitives.WriteUInt16LittleEndian(h[6..], 0);          // flags
        BinaryPrimitives.WriteUInt16LittleEndian(h[8..], 0);          // stored
        BinaryPrimitives.WriteUInt16LittleEndian(h[10..], 0);         // time
        BinaryPrimitives.WriteUInt16LittleEndian(h[12..], DosDate1980);
        BinaryPrimitives.WriteUInt32LittleEndian(h[14..], 0);         // CRC, patched below
        BinaryPrimitives.WriteUInt32LittleEndian(h[18..], (uint)size);
        BinaryPrimitives.WriteUInt32LittleEndian(h[22..], (uint)size);
        BinaryPrimitives.WriteUInt16LittleEndian(h[26..], (ushort)nameBytes.Length);
        BinaryPrimitives.WriteUInt16LittleEndian(h[28..], (ushort)(4 + padding));
        nameBytes.CopyTo(h[LocalHeaderBytes..]);
        var extra = h[(LocalHeaderBytes + nameBytes.Length)..];
        extra[0] = (byte)'F';
        extra[1] = (byte)'B';
        BinaryPrimitives.WriteUInt16LittleEndian(extra[2..], (ushort)padding);
        extra[4..].Fill((byte)'Z');
        _file.Write(header);

        var crc = new Crc32();
        long written = 0;
        writeData(bytes =>
        {
            crc.Append(bytes);
            _file.Write(bytes);
            written += bytes.Length;
        });
        if (written != size) throw new InvalidOperationException($"Zip entry '{name}': {written} bytes written, {size} announced.");

        Span<byte> crcBytes = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32LittleEndian(crcBytes, crc.Value);
        _file.Patch(headerOffset + 14, crcBytes);
        _entries.Add(new Entry(nameBytes, headerOffset, crc.Value, size));
    }

    /// <summary>Adds a small entry held in memory.</summary>
    public void Add(string name, ReadOnlySpan<byte> data)
    {
        var copy = data.ToArray();
        Add(name, copy.Length, sink => sink(copy));
    }

    /// <summary>Writes the central directory and closes the file.</summary>
    public void Dispose()
    {
        long directoryOffset = _file.Position;
        foreach (var e in _entries)
        {
            var c = new byte[46 + e.Name.Length];
            var s = c.AsSpan();
            BinaryPrimitives.WriteUInt32LittleEndian(s, CentralHeaderSignature);
            BinaryPrimitives.WriteUInt16LittleEndian(s[4..], VersionNeeded); // made by
            BinaryPrimitives.WriteUInt16LittleEndian(s[6..], VersionNeeded);
            BinaryPrimitives.WriteUInt16LittleEndian(s[8..], 0);
            BinaryPrimitives.WriteUInt16LittleEndian(s[10..], 0);
            BinaryPrimitives.WriteUInt16LittleEndian(s[12..], 0);
            BinaryPrimitives.WriteUInt16LittleEndian(s[14..], DosDate1980);
            BinaryPrimitives.WriteUInt32LittleEndian(s[16..], e.Crc);
            BinaryPrimitives.WriteUInt32LittleEndian(s[20..], (uint)e.Size);
            BinaryPrimitives.WriteUInt32LittleEndian(s[24..], (uint)e.Size);
            BinaryPrimitives.WriteUInt16LittleEndian(s[28..], (ushort)e.Name.Length);
            // extra, comment, disk, internal and external attributes: all zero
            BinaryPrimitives.WriteUInt32LittleEndian(s[42..], (uint)e.HeaderOffset);
            e.Name.CopyTo(s[46..]);
            _file.Write(c);
        }
        long directorySize = _file.Position - directoryOffset;
        if (_file.Position >= uint.MaxValue || _entries.Count > ushort.MaxValue)
            throw new NotSupportedException("The zip archive passes 4 GiB or 65535 entries; this writer does not write zip64.");
        Span<byte> end = stackalloc byte[22];
        BinaryPrimitives.WriteUInt32LittleEndian(end, EndSignature);
        BinaryPrimitives.WriteUInt16LittleEndian(end[8..], (ushort)_entries.Count);
        BinaryPrimitives.WriteUInt16LittleEndian(end[10..], (ushort)_entries.Count);
        BinaryPrimitives.WriteUInt32LittleEndian(end[12..], (uint)directorySize);
        BinaryPrimitives.WriteUInt32LittleEndian(end[16..], (uint)directoryOffset);
        _file.Write(end);
        _file.Dispose();
    }
}
