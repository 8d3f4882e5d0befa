using MiniGemini.Vision;
using MiniGemini.Modeling;
using SixLabors.ImageSharp;
using SixLabors.ImageSharp.Formats;
using SixLabors.ImageSharp.Formats.Bmp;
using SixLabors.ImageSharp.Formats.Gif;
using SixLabors.ImageSharp.Formats.Jpeg;
using SixLabors.ImageSharp.Formats.Png;
using SixLabors.ImageSharp.Formats.Tiff;
using SixLabors.ImageSharp.Formats.Webp;
using SixLabors.ImageSharp.Metadata.Profiles.Exif;
using SixLabors.ImageSharp.PixelFormats;
using SixLabors.ImageSharp.Processing.Processors.Quantization;
using Xunit;

namespace MiniGemini.Tests.Vision;

/// <summary>
/// Decoding to RGB as PIL's <c>Image.open(f).convert("RGB")</c> does. The expected values follow PIL's rules, which
/// were checked against Pillow: alpha dropped without compositing, high byte of 16-bit colour, 16-bit grey
/// saturating at 255, EXIF orientation ignored.
/// </summary>
public sealed class ImageProcessorDecodingTests
{
    static readonly ImagePreprocessOptions Defaults = new();

    internal static Image<Rgb24> Noise(int width, int height, int seed)
    {
        var random = new Random(seed);
        var image = new Image<Rgb24>(width, height);
        for (int y = 0; y < height; y++)
            for (int x = 0; x < width; x++)
                image[x, y] = new Rgb24((byte)random.Next(256), (byte)random.Next(256), (byte)random.Next(256));
        return image;
    }

    internal static byte[] Encode(Image image, IImageEncoder encoder)
    {
        using var stream = new MemoryStream();
        image.Save(stream, encoder);
        return stream.ToArray();
    }

    static ImageRgb8 Decode(byte[] bytes, ImagePreprocessOptions? options = null) => ImageReader.Read(bytes, "test image", options ?? Defaults);

    static byte[] RgbBytes(Image<Rgb24> image)
    {
        var bytes = new byte[image.Width * image.Height * 3];
        image.CopyPixelDataTo(bytes);
        return bytes;
    }

    [Fact]
    public void Grey_png_is_replicated_to_three_channels()
    {
        using var grey = new Image<L8>(5, 3);
        for (int i = 0; i < 15; i++) grey[i % 5, i / 5] = new L8((byte)(i * 17));
        var rgb = Decode(Encode(grey, new PngEncoder { ColorType = PngColorType.Grayscale }));
        for (int i = 0; i < 15; i++)
            Assert.Equal([(byte)(i * 17), (byte)(i * 17), (byte)(i * 17)], rgb.Pixels[(3 * i)..(3 * i + 3)]);
    }

    [Fact]
    public void Rgba_png_drops_alpha_without_compositing()
    {
        using var rgba = new Image<Rgba32>(4, 2);
        byte[] alphas = [0, 1, 128, 255, 0, 7, 200, 255];
        for (int i = 0; i < 8; i++) rgba[i % 4, i / 4] = new Rgba32((byte)(30 * i), (byte)(255 - 20 * i), 99, alphas[i]);
        var rgb = Decode(Encode(rgba, new PngEncoder { ColorType = PngColorType.RgbWithAlpha }));
        for (int i = 0; i < 8; i++)
            Assert.Equal([(byte)(30 * i), (byte)(255 - 20 * i), (byte)99], rgb.Pixels[(3 * i)..(3 * i + 3)]);
    }

    [Fact]
    public void Grey_with_alpha_png_is_replicated_to_three_channels_and_drops_alpha()
    {
        byte[] levels = [0, 17, 128, 255];
        byte[] alphas = [255, 0, 7, 200];
        using var la8 = new Image<La16>(4, 1);
        for (int i = 0; i < 4; i++) la8[i, 0] = new La16(levels[i], alphas[i]);
        var rgb = Decode(Encode(la8, new PngEncoder { ColorType = PngColorType.GrayscaleWithAlpha, BitDepth = PngBitDepth.Bit8 }));
        for (int i = 0; i < 4; i++) Assert.Equal([levels[i], levels[i], levels[i]], rgb.Pixels[(3 * i)..(3 * i + 3)]);

        // 16-bit grey with alpha keeps the high byte of the grey level.
        ushort[] wide = [0x12FF, 0x0080, 0xFFFF, 0x7F80];
        using var la16 = new Image<La32>(4, 1);
        for (int i = 0; i < 4; i++) la16[i, 0] = new La32(wide[i], (ushort)(alphas[i] * 257));
        var rgb16 = Decode(Encode(la16, new PngEncoder { ColorType = PngColorType.GrayscaleWithAlpha, BitDepth = PngBitDepth.Bit16 }));
        for (int i = 0; i < 4; i++)
        {
            var high = (byte)(wide[i] >> 8);
            Assert.Equal([high, high, high], rgb16.Pixels[(3 * i)..(3 * i + 3)]);
        }
    }

    [Fact]
    public void Sixteen_bit_colour_keeps_the_high_byte()
    {
        // 0x12FF → 0x12: PIL truncates; scaling with rounding would give 0x13.
        ushort[] values = [0x12FF, 0x0080, 0xFFFF, 0x7F80, 0x0100, 0x00FF];
        using var rgb48 = new Image<Rgb48>(2, 1);
        rgb48[0, 0] = new Rgb48(values[0], values[1], values[2]);
        rgb48[1, 0] = new Rgb48(values[3], values[4], values[5]);
        var expected = values.Select(v => (byte)(v >> 8)).ToArray();
        Assert.Equal(expected, Decode(Encode(rgb48, new PngEncoder { BitDepth = PngBitDepth.Bit16, ColorType = PngColorType.Rgb })).Pixels);

        using var rgba64 = new Image<Rgba64>(2, 1);
        rgba64[0, 0] = new Rgba64(values[0], values[1], values[2], 0x1234);
        rgba64[1, 0] = new Rgba64(values[3], values[4], values[5], 0);
        Assert.Equal(expected, Decode(Encode(rgba64, new PngEncoder { BitDepth = PngBitDepth.Bit16, ColorType = PngColorType.RgbWithAlpha })).Pixels);
    }

    [Fact]
    public void Sixteen_bit_grey_saturates_at_255_as_in_pil()
    {
        ushort[] values = [0, 200, 255, 256, 4000, 65535];
        using var grey = new Image<L16>(6, 1);
        for (int i = 0; i < 6; i++) grey[i, 0] = new L16(values[i]);
        var rgb = Decode(Encode(grey, new PngEncoder { BitDepth = PngBitDepth.Bit16, ColorType = PngColorType.Grayscale }));
        byte[] expected = [0, 200, 255, 255, 255, 255];
        for (int i = 0; i < 6; i++) Assert.Equal([expected[i], expected[i], expected[i]], rgb.Pixels[(3 * i)..(3 * i + 3)]);
    }

    [Fact]
    public void Palette_png_gives_its_palette_colours_and_ignores_transparency()
    {
        Color[] palette = [Color.FromRgba(10, 20, 30, 255), Color.FromRgba(200, 100, 50, 0), Color.FromRgba(0, 255, 128, 90)];
        using var image = new Image<Rgba32>(3, 2);
        for (int i = 0; i < 6; i++) image[i % 3, i / 3] = palette[i % 3].ToPixel<Rgba32>();
        var encoder = new PngEncoder
        {
            ColorType = PngColorType.Palette,
            Quantizer = new PaletteQuantizer(palette, new QuantizerOptions { Dither = null }),
        };
        var bytes = Encode(image, encoder);
        Assert.Equal(PngColorType.Palette, Image.Identify(bytes).Metadata.GetPngMetadata().ColorType);
        var rgb = Decode(bytes);
        for (int i = 0; i < 6; i++)
        {
            var colour = palette[i % 3].ToPixel<Rgba32>();
            Assert.Equal([colour.R, colour.G, colour.B], rgb.Pixels[(3 * i)..(3 * i + 3)]);
        }
    }

    [Fact]
    public void Cmyk_jpeg_matches_pillows_conversion()
    {
        // cmyk.jpg was written by Pillow; cmyk_rgb.png is Pillow's convert("RGB") of it. Different JPEG decoders
        // (libjpeg vs ImageSharp) and CMYK→RGB roundings allow a few levels of difference.
        var expected = ImageReader.Read(Path.Combine(ImageProcessorTests.DataFolder, "cmyk_rgb.png"), Defaults);
        var actual = ImageReader.Read(Path.Combine(ImageProcessorTests.DataFolder, "cmyk.jpg"), Defaults);
        Assert.Equal((expected.Width, expected.Height), (actual.Width, actual.Height));
        int worst = expected.Pixels.Zip(actual.Pixels, (e, a) => Math.Abs(e - a)).Max();
        Assert.True(worst <= 3, $"CMYK JPEG: max |Δ| {worst} levels against Pillow");
    }

    [Fact]
    public void Jpeg_colour_and_grey_decode_close_to_the_source()
    {
        using var smooth = new Image<Rgb24>(32, 16);
        for (int y = 0; y < 16; y++)
            for (int x = 0; x < 32; x++) smooth[x, y] = new Rgb24((byte)(x * 8), (byte)(y * 16), 128);
        var colour = Decode(Encode(smooth, new JpegEncoder { Quality = 100, ColorType = JpegColorType.YCbCrRatio444 }));
        int worst = RgbBytes(smooth).Zip(colour.Pixels, (e, a) => Math.Abs(e - a)).Max();
        Assert.True(worst <= 4, $"JPEG: max |Δ| {worst} levels");

        var grey = Decode(Encode(smooth, new JpegEncoder { Quality = 100, ColorType = JpegColorType.Luminance }));
        for (int i = 0; i < grey.Pixels.Length; i += 3)
            Assert.True(grey.Pixels[i] == grey.Pixels[i + 1] && grey.Pixels[i] == grey.Pixels[i + 2], $"grey JPEG pixel {i / 3} is not grey");
    }

    public static TheoryData<string> LosslessFormats => ["bmp", "tiff", "webp", "gif"];

    [Theory]
    [MemberData(nameof(LosslessFormats))]
    public void Lossless_formats_decode_to_the_exact_pixels(string format)
    {
        // GIF is lossless only within 256 colours; a 4×4 image has 16.
        using var source = Noise(format == "gif" ? 4 : 9, format == "gif" ? 4 : 7, seed: 3);
        IImageEncoder encoder = format switch
        {
            "bmp" => new BmpEncoder { BitsPerPixel = BmpBitsPerPixel.Pixel24 },
            "tiff" => new TiffEncoder(),
            "webp" => new WebpEncoder { FileFormat = WebpFileFormatType.Lossless },
            _ => new GifEncoder { Quantizer = new PaletteQuantizer(Distinct(source), new QuantizerOptions { Dither = null }) },
        };
        Assert.Equal(RgbBytes(source), Decode(Encode(source, encoder)).Pixels);
    }

    static Color[] Distinct(Image<Rgb24> image) =>
        [.. Enumerable.Range(0, image.Width * image.Height).Select(i => image[i % image.Width, i / image.Width]).Distinct().Select(p => Color.FromRgb(p.R, p.G, p.B))];

    [Fact]
    public void Gif_gives_its_first_frame()
    {
        using var animation = new Image<Rgba32>(2, 2, new Rgba32(255, 0, 0));
        using (var second = new Image<Rgba32>(2, 2, new Rgba32(0, 0, 255)))
            animation.Frames.AddFrame(second.Frames.RootFrame);
        var rgb = Decode(Encode(animation, new GifEncoder()));
        for (int i = 0; i < 4; i++) Assert.Equal([255, 0, 0], rgb.Pixels[(3 * i)..(3 * i + 3)]);
    }

    static byte[] RotatedJpeg()
    {
        // Stored 32×16, left half red, right half blue; EXIF orientation 6 says "rotate 90° clockwise to display".
        using var image = new Image<Rgb24>(32, 16);
        for (int y = 0; y < 16; y++)
            for (int x = 0; x < 32; x++) image[x, y] = x < 16 ? new Rgb24(255, 0, 0) : new Rgb24(0, 0, 255);
        image.Metadata.ExifProfile = new ExifProfile();
        image.Metadata.ExifProfile.SetValue(ExifTag.Orientation, (ushort)6);
        return Encode(image, new JpegEncoder { Quality = 95 });
    }

    [Fact]
    public void Exif_orientation_is_ignored_by_default_like_mgm()
    {
        var stored = Decode(RotatedJpeg());
        Assert.Equal((32, 16), (stored.Width, stored.Height));
        Assert.True(stored.Pixels[0] > 200 && stored.Pixels[2] < 50, "top-left stays red");
    }

    [Fact]
    public void Exif_orientation_is_applied_when_asked()
    {
        var upright = Decode(RotatedJpeg(), new ImagePreprocessOptions { ApplyExifOrientation = true });
        Assert.Equal((16, 32), (upright.Width, upright.Height));
        Assert.True(upright.Pixels[0] > 200 && upright.Pixels[2] < 50, "the red half is on top");
        int bottomLeft = (31 * 16) * 3;
        Assert.True(upright.Pixels[bottomLeft] < 50 && upright.Pixels[bottomLeft + 2] > 200, "the blue half is at the bottom");

        var processor = new ImageProcessor(new ImagePreprocessOptions { HrSize = 16, LrSize = 8 });
        var oriented = new ImageProcessor(processor.Options with { ApplyExifOrientation = true });
        using var asStored = processor.Process(RotatedJpeg(), "rotated.jpg");
        using var asShown = oriented.Process(RotatedJpeg(), "rotated.jpg");
        Assert.False(asStored.Hr.allclose(asShown.Hr, rtol: 0, atol: 0.5));
    }

    [Fact]
    public void A_decoded_image_is_not_modified()
    {
        using var image = Image.Load(RotatedJpeg());
        var upright = ImageReader.FromImage(image, new ImagePreprocessOptions { ApplyExifOrientation = true });
        Assert.Equal((16, 32), (upright.Width, upright.Height));
        Assert.Equal((32, 16), (image.Width, image.Height));
        Assert.Equal((ushort)6, image.Metadata.ExifProfile!.GetValue(ExifTag.Orientation)!.Value);
    }

    [Fact]
    public void Every_input_kind_gives_the_same_tensors()
    {
        var processor = new ImageProcessor(new ImagePreprocessOptions { HrSize = 24, LrSize = 12 });
        using var source = Noise(17, 10, seed: 4);
        var png = Encode(source, new PngEncoder());
        using var files = new TempFiles();
        using var fromBytes = processor.Process(png, "noise.png");
        using var fromPath = processor.Process(files.Write("noise.png", png));
        using var fromStream = processor.Process(new ForwardOnlyStream(png), "noise stream");
        using var fromImage = processor.Process(source);
        foreach (var other in new[] { fromPath, fromStream, fromImage })
        {
            Assert.True(fromBytes.Hr.Equals(other.Hr));
            Assert.True(fromBytes.Lr.Equals(other.Lr));
        }
        Assert.Equal(new long[] { 1, 3, 24, 24 }, fromBytes.Hr.shape);
        Assert.Equal(new long[] { 1, 3, 12, 12 }, fromBytes.Lr.shape);
    }
}

/// <summary>Temporary files deleted on dispose.</summary>
internal sealed class TempFiles : IDisposable
{
    readonly string _folder = Directory.CreateTempSubdirectory("mgm-image-tests-").FullName;

    public string Write(string name, byte[] bytes)
    {
        var path = Path.Combine(_folder, name);
        File.WriteAllBytes(path, bytes);
        return path;
    }

    public void Dispose() => Directory.Delete(_folder, recursive: true);
}

/// <summary>A stream that cannot seek, as a network response is.</summary>
internal sealed class ForwardOnlyStream(byte[] bytes) : Stream
{
    readonly MemoryStream _inner = new(bytes);
    public override bool CanRead => true;
    public override bool CanSeek => false;
    public override bool CanWrite => false;
    public override long Length => throw new NotSupportedException();
    public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
    public override int Read(byte[] buffer, int offset, int count) => _inner.Read(buffer, offset, count);
    public override void Flush() { }
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    public override void SetLength(long value) => throw new NotSupportedException();
    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
}
