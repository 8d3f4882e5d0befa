using System.Runtime.InteropServices;
using SixLabors.ImageSharp;
using SixLabors.ImageSharp.Formats;
using SixLabors.ImageSharp.Formats.Bmp;
using SixLabors.ImageSharp.Formats.Gif;
using SixLabors.ImageSharp.Formats.Jpeg;
using SixLabors.ImageSharp.Formats.Pbm;
using SixLabors.ImageSharp.Formats.Png;
using SixLabors.ImageSharp.Formats.Tga;
using SixLabors.ImageSharp.Formats.Tiff;
using SixLabors.ImageSharp.Formats.Webp;
using SixLabors.ImageSharp.Metadata;
using SixLabors.ImageSharp.PixelFormats;
using SixLabors.ImageSharp.Processing;

namespace MiniGemini.Vision;

/// <summary>
/// Encoded bytes → <see cref="ImageRgb8"/> with the result of PIL's <c>Image.open(f).convert("RGB")</c>: the header is
/// checked against the pixel budget before decoding, and every decoder failure becomes an
/// <see cref="InvalidImageException"/> naming the input.
/// </summary>
internal static class ImageReader
{
    // Our own configuration, so that first-frame decoding does not change ImageSharp's global default. PIL's
    // Image.open also gives the first frame of a GIF or TIFF.
    static readonly Configuration Decoders = CreateConfiguration();

    /// <summary>
    /// Reads a regular file of at most <see cref="MaxEncodedBytes"/>: a directory, a device (<c>/dev/zero</c>), a pipe or
    /// a pseudo-file is refused by name before anything large is read.
    /// </summary>
    public static ImageRgb8 Read(string path, ImagePreprocessOptions options) => Read(ReadBytes(path, options), path, options);

    /// <summary>The encoded bytes of an image file, refusing directories, devices and files larger than the pixel budget allows.</summary>
    public static byte[] ReadBytes(string path, ImagePreprocessOptions options)
    {
        if (Directory.Exists(path)) throw new InvalidImageException($"{path}: is a directory, not an image file.", path);
        var file = new FileInfo(path);
        if (!file.Exists) throw new FileNotFoundException($"Image file not found: {path}", path);
        long budget = MaxEncodedBytes(options);
        if (file.Length > budget)
            throw new InvalidImageException($"{path}: {file.Length:N0} bytes is more than an image within the pixel budget needs ({budget:N0} bytes).", path);
        var bytes = new byte[file.Length];
        using (var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, bufferSize: 1))
        {
            stream.ReadExactly(bytes);
            // A regular file ends at its size; a device or pseudo-file (size 0 or less than it yields) does not.
            if (stream.ReadByte() >= 0)
                throw new InvalidImageException($"{path}: not a regular file (it yields more than its size of {file.Length} bytes); devices, pipes and pseudo-files are not read.", path);
        }
        return bytes;
    }

    /// <summary>The most bytes an encoded image within the pixel budget can take: 8 per pixel (16-bit RGBA, uncompressed) plus 1 MiB of headers.</summary>
    internal static long MaxEncodedBytes(ImagePreprocessOptions options) => options.MaxImagePixels * 8 + (1 << 20);

    public static ImageRgb8 Read(Stream stream, string name, ImagePreprocessOptions options)
    {
        // The encoded bytes are held once: the header, the completeness check and the decoder all read them.
        if (stream is MemoryStream memory && memory.TryGetBuffer(out var buffer))
            return Read(buffer.AsMemory((int)memory.Position), name, options);
        using var copy = new MemoryStream();
        stream.CopyTo(copy);
        return Read(copy.GetBuffer().AsMemory(0, (int)copy.Length), name, options);
    }

    public static ImageRgb8 Read(ReadOnlyMemory<byte> data, string name, ImagePreprocessOptions options)
    {
        if (data.IsEmpty) throw new InvalidImageException($"{name}: the input is empty (0 bytes).", name);
        var segment = MemoryMarshal.TryGetArray(data, out var array) ? array : new ArraySegment<byte>(data.ToArray());
        MemoryStream Open() => new(segment.Array!, segment.Offset, segment.Count, writable: false);

        IImageFormat? format = null;
        var info = Guard(name, () =>
        {
            using var header = Open();
            return Image.Identify(Decoders, header, out format);
        }) ?? throw new InvalidImageException($"{name}: not an image in a format that can be read (PNG, JPEG, GIF, BMP, TIFF, WebP, TGA, PBM).", name);
        if (info.Width <= 0 || info.Height <= 0)
            throw new InvalidImageException($"{name}: the header declares an empty image ({info.Width}×{info.Height}).", name);
        if ((long)info.Width * info.Height > options.MaxImagePixels)
            throw InvalidImageException.TooLarge(name, info.Width, info.Height, options.MaxImagePixels);
        ImageCompleteness.Check(format, data.Span, name);

        using var image = Guard(name, () =>
        {
            using var stream = Open();
            return Image.Load(Decoders, stream);
        });
        if (options.ApplyExifOrientation) image.Mutate(x => x.AutoOrient());
        return ToRgb(image);
    }

    /// <summary>
    /// An already decoded image as PIL's <c>convert("RGB")</c> would give it. The caller's image is not changed:
    /// EXIF orientation, if asked for, is applied to a copy.
    /// </summary>
    public static ImageRgb8 FromImage(Image image, ImagePreprocessOptions options)
    {
        if (options.ApplyExifOrientation && image.Metadata.ExifProfile is not null)
        {
            using var upright = image.Clone(x => x.AutoOrient());
            return ToRgb(upright);
        }
        return ToRgb(image);
    }

    /// <summary>
    /// PIL's conversion to 8-bit RGB. Alpha is dropped, not composited: <c>convert("RGB")</c> from RGBA, LA or a
    /// palette with transparency keeps each pixel's colour and ignores its alpha. Grey is replicated to the three
    /// channels. 16-bit colour keeps the high byte (PIL unpacks 16-bit PNG colour as "RGB;16B"). 16-bit grey is
    /// clamped at 255, not scaled: PIL opens it as mode I;16, and I;16 → RGB saturates.
    /// </summary>
    internal static ImageRgb8 ToRgb(Image image)
    {
        var rgb = new ImageRgb8(image.Width, image.Height);
        var output = rgb.Pixels;
        switch (image)
        {
            case Image<Rgb24> rgb24:
                rgb24.CopyPixelDataTo(output.AsSpan());
                break;
            case Image<L16> grey16:
                var grey = new L16[image.Width * image.Height];
                grey16.CopyPixelDataTo(grey);
                for (int i = 0; i < grey.Length; i++)
                    output[3 * i] = output[3 * i + 1] = output[3 * i + 2] = (byte)Math.Min(grey[i].PackedValue, (ushort)255);
                break;
            case Image<La32> greyAlpha16:
                var greyAlpha = new La32[image.Width * image.Height];
                greyAlpha16.CopyPixelDataTo(greyAlpha);
                for (int i = 0; i < greyAlpha.Length; i++)
                    output[3 * i] = output[3 * i + 1] = output[3 * i + 2] = (byte)(greyAlpha[i].L >> 8);
                break;
            case Image<Rgb48> rgb48:
                HighBytes(rgb48, output, static p => (p.R, p.G, p.B));
                break;
            case Image<Rgba64> rgba64:
                HighBytes(rgba64, output, static p => (p.R, p.G, p.B));
                break;
            default:
                // 8-bit (and float) formats: ImageSharp's conversion to Rgb24 replicates grey and drops alpha.
                using (var converted = image.CloneAs<Rgb24>())
                    converted.CopyPixelDataTo(output.AsSpan());
                break;
        }
        return rgb;
    }

    /// <summary>16-bit colour to 8-bit RGB: the high byte of each of R, G and B.</summary>
    static void HighBytes<TPixel>(Image<TPixel> image, byte[] output, Func<TPixel, (ushort R, ushort G, ushort B)> colour)
        where TPixel : unmanaged, IPixel<TPixel>
    {
        var pixels = new TPixel[image.Width * image.Height];
        image.CopyPixelDataTo(pixels);
        for (int i = 0; i < pixels.Length; i++)
        {
            var (r, g, b) = colour(pixels[i]);
            (output[3 * i], output[3 * i + 1], output[3 * i + 2]) = ((byte)(r >> 8), (byte)(g >> 8), (byte)(b >> 8));
        }
    }

    static T Guard<T>(string name, Func<T> decode)
    {
        try
        {
            return decode();
        }
        catch (Exception e) when (e is not InvalidImageException and not OutOfMemoryException and not OperationCanceledException)
        {
            // Decoders report bad data with ImageFormatException, InvalidImageContentException, NotSupportedException,
            // but a malformed file can also surface as an IndexOutOfRange or EndOfStream deep inside one.
            throw new InvalidImageException($"{name}: the image could not be decoded ({e.GetType().Name}: {e.Message}).", name, e);
        }
    }

    static Configuration CreateConfiguration()
    {
        var configuration = new Configuration(
            new PngConfigurationModule(), new JpegConfigurationModule(), new GifConfigurationModule(), new BmpConfigurationModule(),
            new TiffConfigurationModule(), new WebpConfigurationModule(), new TgaConfigurationModule(), new PbmConfigurationModule());
        configuration.ImageFormatsManager.SetDecoder(GifFormat.Instance, new GifDecoder { DecodingMode = FrameDecodingMode.First });
        configuration.ImageFormatsManager.SetDecoder(TiffFormat.Instance, new TiffDecoder { DecodingMode = FrameDecodingMode.First });
        return configuration;
    }
}
