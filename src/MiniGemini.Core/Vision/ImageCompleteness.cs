using System.Buffers.Binary;
using SixLabors.ImageSharp.Formats;
using SixLabors.ImageSharp.Formats.Bmp;
using SixLabors.ImageSharp.Formats.Gif;
using SixLabors.ImageSharp.Formats.Jpeg;
using SixLabors.ImageSharp.Formats.Png;

namespace MiniGemini.Vision;

/// <summary>
/// Refuses truncated PNG, JPEG, GIF and BMP data. ImageSharp decodes a cut-off file with the missing rows left blank,
/// while PIL raises "image file is truncated", so an incomplete upload would otherwise reach the model as a half-grey
/// picture.
/// </summary>
internal static class ImageCompleteness
{
    public static void Check(IImageFormat? format, ReadOnlySpan<byte> data, string name)
    {
        if (format == PngFormat.Instance) CheckPng(data, name);
        else if (format == JpegFormat.Instance) CheckJpeg(data, name);
        else if (format == GifFormat.Instance) CheckGif(data, name);
        else if (format == BmpFormat.Instance) CheckBmp(data, name);
    }

    // Every chunk (length, type, data, CRC) must be whole, up to and including IEND.
    static void CheckPng(ReadOnlySpan<byte> data, string name)
    {
        const int SignatureLength = 8;
        int at = SignatureLength;
        while (at + 8 <= data.Length)
        {
            long length = BinaryPrimitives.ReadUInt32BigEndian(data[at..]);
            var type = System.Text.Encoding.ASCII.GetString(data.Slice(at + 4, 4));
            long end = at + 12 + length;
            if (end > data.Length)
                throw new InvalidImageException($"{name}: the PNG data is truncated: its {type} chunk needs {end - data.Length:N0} more bytes.", name);
            if (type == "IEND") return;
            at = (int)end;
        }
        throw new InvalidImageException($"{name}: the PNG data is truncated: it ends after {data.Length:N0} bytes without an IEND chunk.", name);
    }

    // The last scan (SOS, FF DA) must be followed by the end-of-image marker (FF D9). Inside entropy-coded data a
    // 0xFF byte is always followed by 0x00 or a restart marker, so neither pair can occur there by chance.
    static void CheckJpeg(ReadOnlySpan<byte> data, string name)
    {
        int lastScan = data.LastIndexOf([(byte)0xFF, (byte)0xDA]);
        int lastEnd = data.LastIndexOf([(byte)0xFF, (byte)0xD9]);
        if (lastScan >= 0 && lastEnd < lastScan)
            throw new InvalidImageException($"{name}: the JPEG data is truncated: its last scan has no end-of-image marker.", name);
    }

    // The first frame (the one decoded) must be whole: header, colour tables, extensions, image descriptor and every
    // data sub-block up to the block terminator.
    static void CheckGif(ReadOnlySpan<byte> data, string name)
    {
        int at = 13; // "GIF89a" + logical screen descriptor
        if (data.Length < at) throw GifTruncated(name, data.Length, "its header");
        if ((data[10] & 0x80) != 0) at += 3 << ((data[10] & 7) + 1);
        while (true)
        {
            if (at >= data.Length) throw GifTruncated(name, data.Length, "its blocks before the first image");
            switch (data[at])
            {
                case 0x21: // extension: introducer, label, sub-blocks
                    at = SkipSubBlocks(data, at + 2, name, "an extension");
                    break;
                case 0x2C: // image descriptor, local colour table, LZW minimum code size, image data
                    if (at + 10 > data.Length) throw GifTruncated(name, data.Length, "the first image's descriptor");
                    byte flags = data[at + 9];
                    at += 10;
                    if ((flags & 0x80) != 0) at += 3 << ((flags & 7) + 1);
                    SkipSubBlocks(data, at + 1, name, "the first image's pixel data");
                    return;
                default:
                    throw new InvalidImageException($"{name}: the GIF data is corrupt: byte 0x{data[at]:X2} at {at:N0} starts no block.", name);
            }
        }
    }

    /// <summary>The position after a chain of GIF sub-blocks (size byte, data) ended by a zero size.</summary>
    static int SkipSubBlocks(ReadOnlySpan<byte> data, int at, string name, string what)
    {
        while (true)
        {
            if (at >= data.Length) throw GifTruncated(name, data.Length, what);
            int size = data[at];
            at += 1 + size;
            if (size == 0) return at;
        }
    }

    static InvalidImageException GifTruncated(string name, int length, string what) =>
        new($"{name}: the GIF data is truncated: it ends after {length:N0} bytes, inside {what}.", name);

    // Uncompressed and bit-field BMPs hold every row: pixel data offset + |height| rows of 4-byte-aligned width × bpp bits.
    static void CheckBmp(ReadOnlySpan<byte> data, string name)
    {
        if (data.Length < 34) throw new InvalidImageException($"{name}: the BMP data is truncated: its headers need 34 bytes, it has {data.Length}.", name);
        long offset = BinaryPrimitives.ReadUInt32LittleEndian(data[10..]);
        long width = BinaryPrimitives.ReadInt32LittleEndian(data[18..]);
        long height = Math.Abs((long)BinaryPrimitives.ReadInt32LittleEndian(data[22..]));
        int bitsPerPixel = BinaryPrimitives.ReadUInt16LittleEndian(data[28..]);
        uint compression = BinaryPrimitives.ReadUInt32LittleEndian(data[30..]);
        if (compression is not (0 or 3 or 6)) return; // RLE and embedded JPEG/PNG end where their own data says
        long needed = offset + (width * bitsPerPixel + 31) / 32 * 4 * height;
        if (data.Length < needed)
            throw new InvalidImageException($"{name}: the BMP data is truncated: its {height} rows need {needed:N0} bytes, it has {data.Length:N0}.", name);
    }
}
