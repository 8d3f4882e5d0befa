using System.Buffers.Binary;
using SixLabors.ImageSharp.Formats;
using SixLabors.ImageSharp.Formats.Jpeg;
using SixLabors.ImageSharp.Formats.Png;

namespace MiniGemini.Vision;

/// <summary>
/// Refuses truncated PNG and JPEG data. ImageSharp decodes a cut-off file with the missing rows left blank, while PIL
/// raises "image file is truncated", so an incomplete upload would otherwise reach the model as a half-grey picture.
/// </summary>
internal static class ImageCompleteness
{
    public static void Check(IImageFormat? format, ReadOnlySpan<byte> data, string name)
    {
        if (format == PngFormat.Instance) CheckPng(data, name);
        else if (format == JpegFormat.Instance) CheckJpeg(data, name);
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
}
