using System.Buffers.Binary;
using SixLabors.ImageSharp.Formats;
using SixLabors.ImageSharp.Formats.Bmp;
using SixLabors.ImageSharp.Formats.Gif;
using SixLabors.ImageSharp.Formats.Jpeg;
using SixLabors.ImageSharp.Formats.Pbm;
using SixLabors.ImageSharp.Formats.Png;
using SixLabors.ImageSharp.Formats.Tga;
using SixLabors.ImageSharp.Formats.Tiff;
using SixLabors.ImageSharp.Formats.Webp;

namespace MiniGemini.Vision;

/// <summary>
/// Refuses truncated data in every format the reader accepts (PNG, JPEG, GIF, BMP, WebP, TIFF, TGA, PBM). ImageSharp decodes a cut-off file with the missing rows left blank,
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
        else if (format == WebpFormat.Instance) CheckWebp(data, name);
        else if (format == TiffFormat.Instance) CheckTiff(data, name);
        else if (format == TgaFormat.Instance) CheckTga(data, name);
        else if (format == PbmFormat.Instance) CheckPbm(data, name);
    }

    static void Require(long needed, ReadOnlySpan<byte> data, string name, string format, string what)
    {
        if (data.Length < needed)
            throw new InvalidImageException($"{name}: the {format} data is truncated: {what} need {needed:N0} bytes, it has {data.Length:N0}.", name);
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
        if (BinaryPrimitives.ReadUInt32LittleEndian(data[14..]) < 40) return; // OS/2 1.x core header: other field layout
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

    // A RIFF container states its own size.
    static void CheckWebp(ReadOnlySpan<byte> data, string name)
    {
        Require(12, data, name, "WebP", "its RIFF header");
        Require(8L + BinaryPrimitives.ReadUInt32LittleEndian(data[4..]), data, name, "WebP", "its RIFF chunks");
    }

    // Every strip or tile of the first image must lie inside the data (offsets and byte counts from its IFD).
    static void CheckTiff(ReadOnlySpan<byte> data, string name)
    {
        Require(8, data, name, "TIFF", "its header");
        bool little = data[0] == (byte)'I';
        if (U16(data, little, 2) != 42) return; // BigTIFF: left to the decoder
        long ifd = U32(data, little, 4);
        Require(ifd + 2, data, name, "TIFF", "its first directory");
        int entries = U16(data, little, (int)ifd);
        Require(ifd + 2 + 12L * entries, data, name, "TIFF", "its first directory's entries");
        long[]? offsets = null, counts = null;
        for (int e = 0; e < entries; e++)
        {
            int at = (int)ifd + 2 + 12 * e;
            int tag = U16(data, little, at), type = U16(data, little, at + 2);
            long count = U32(data, little, at + 4);
            int size = type == 3 ? 2 : 4; // SHORT or LONG
            if (type is not (3 or 4) || count > int.MaxValue / 4) continue;
            if (tag is not (273 or 279 or 324 or 325)) continue; // StripOffsets, StripByteCounts, TileOffsets, TileByteCounts
            long valuesAt = count * size <= 4 ? at + 8 : U32(data, little, at + 8);
            Require(valuesAt + count * size, data, name, "TIFF", "its strip table");
            var values = new long[count];
            for (int v = 0; v < count; v++) values[v] = size == 2 ? U16(data, little, (int)valuesAt + 2 * v) : U32(data, little, (int)valuesAt + 4 * v);
            if (tag is 273 or 324) offsets = values; else counts = values;
        }
        if (offsets is null || counts is null) return;
        long end = offsets.Zip(counts, (o, c) => o + c).DefaultIfEmpty(0).Max();
        Require(end, data, name, "TIFF", "its strips");
    }

    static uint U32(ReadOnlySpan<byte> data, bool little, int at) =>
        little ? BinaryPrimitives.ReadUInt32LittleEndian(data[at..]) : BinaryPrimitives.ReadUInt32BigEndian(data[at..]);

    static ushort U16(ReadOnlySpan<byte> data, bool little, int at) =>
        little ? BinaryPrimitives.ReadUInt16LittleEndian(data[at..]) : BinaryPrimitives.ReadUInt16BigEndian(data[at..]);

    // Uncompressed TGA (types 1, 2, 3): 18-byte header, image id, colour map, then width × height pixels.
    static void CheckTga(ReadOnlySpan<byte> data, string name)
    {
        Require(18, data, name, "TGA", "its header");
        int type = data[2];
        if (type is not (1 or 2 or 3)) return; // run-length types end where their own data says
        long colourMap = data[1] == 1 ? BinaryPrimitives.ReadUInt16LittleEndian(data[5..]) * (long)((data[7] + 7) / 8) : 0;
        long pixels = (long)BinaryPrimitives.ReadUInt16LittleEndian(data[12..]) * BinaryPrimitives.ReadUInt16LittleEndian(data[14..]);
        Require(18 + data[0] + colourMap + pixels * ((data[16] + 7) / 8), data, name, "TGA", "its pixels");
    }

    // Binary PBM/PGM/PPM (P4, P5, P6): a text header (magic, width, height, maxval; comments allowed), then the raster.
    static void CheckPbm(ReadOnlySpan<byte> data, string name)
    {
        if (data.Length < 2 || data[0] != (byte)'P' || data[1] is not ((byte)'4' or (byte)'5' or (byte)'6')) return; // plain (text) forms
        char kind = (char)data[1];
        int at = 2;
        var fields = new long[kind == '4' ? 2 : 3];
        for (int f = 0; f < fields.Length; f++)
        {
            while (at < data.Length && (char.IsWhiteSpace((char)data[at]) || data[at] == (byte)'#'))
            {
                if (data[at] == (byte)'#') while (at < data.Length && data[at] != (byte)'\n') at++;
                else at++;
            }
            long value = 0;
            while (at < data.Length && data[at] is >= (byte)'0' and <= (byte)'9' && value < int.MaxValue) value = value * 10 + (data[at++] - '0');
            fields[f] = value;
        }
        at++; // the single whitespace byte before the raster
        var (width, height) = (fields[0], fields[1]);
        long raster = kind == '4' ? (width + 7) / 8 * height : width * height * (kind == '6' ? 3 : 1) * (fields[2] > 255 ? 2 : 1);
        Require(at + raster, data, name, "PBM", "its rows");
    }
}
