using System.Buffers.Binary;
using MiniGemini.Vision;
using MiniGemini.Modeling;
using SixLabors.ImageSharp.Formats;
using SixLabors.ImageSharp.Formats.Bmp;
using SixLabors.ImageSharp.Formats.Gif;
using SixLabors.ImageSharp.Formats.Jpeg;
using SixLabors.ImageSharp.Formats.Pbm;
using SixLabors.ImageSharp.Formats.Png;
using SixLabors.ImageSharp.Formats.Tga;
using SixLabors.ImageSharp.Formats.Tiff;
using SixLabors.ImageSharp.Formats.Webp;
using Xunit;

namespace MiniGemini.Tests.Vision;

/// <summary>Untrusted input: every bad image becomes a typed exception that names it; large ones are refused unread.</summary>
public sealed class ImageProcessorSafetyTests
{
    readonly ImageProcessor _processor = new(new ImagePreprocessOptions { HrSize = 16, LrSize = 8 });

    /// <summary>A PNG whose header declares <paramref name="width"/>×<paramref name="height"/> but carries no pixel data.</summary>
    static byte[] PngHeaderOnly(int width, int height)
    {
        var ihdr = new byte[13];
        BinaryPrimitives.WriteInt32BigEndian(ihdr, width);
        BinaryPrimitives.WriteInt32BigEndian(ihdr.AsSpan(4), height);
        ihdr[8] = 8; // bit depth
        ihdr[9] = 2; // colour type RGB
        return [.. PngSignature, .. Chunk("IHDR", ihdr), .. Chunk("IEND", [])];
    }

    static readonly byte[] PngSignature = [0x89, (byte)'P', (byte)'N', (byte)'G', 0x0D, 0x0A, 0x1A, 0x0A];

    static byte[] Chunk(string type, byte[] data)
    {
        var chunk = new byte[12 + data.Length];
        BinaryPrimitives.WriteInt32BigEndian(chunk, data.Length);
        System.Text.Encoding.ASCII.GetBytes(type, chunk.AsSpan(4));
        data.CopyTo(chunk, 8);
        BinaryPrimitives.WriteUInt32BigEndian(chunk.AsSpan(8 + data.Length), Crc32(chunk.AsSpan(4, 4 + data.Length)));
        return chunk;
    }

    // PNG's CRC-32 (ISO-HDLC polynomial, reflected), bit by bit: the chunks here are a few bytes long.
    static uint Crc32(ReadOnlySpan<byte> bytes)
    {
        uint crc = 0xFFFFFFFF;
        foreach (var b in bytes)
        {
            crc ^= b;
            for (int bit = 0; bit < 8; bit++) crc = (crc & 1) != 0 ? 0xEDB88320 ^ (crc >> 1) : crc >> 1;
        }
        return ~crc;
    }

    static byte[] ValidPng(int width = 40, int height = 30)
    {
        using var image = ImageProcessorDecodingTests.Noise(width, height, seed: 9);
        return ImageProcessorDecodingTests.Encode(image, new PngEncoder());
    }

    static byte[] Valid(IImageEncoder encoder)
    {
        using var image = ImageProcessorDecodingTests.Noise(64, 64, seed: 9);
        return ImageProcessorDecodingTests.Encode(image, encoder);
    }

    static byte[] TwoThirds(IImageEncoder encoder) => Valid(encoder)[..(Valid(encoder).Length * 2 / 3)];

    [Fact]
    public void Whole_files_of_every_checked_format_are_accepted()
    {
        IImageEncoder[] encoders = [new GifEncoder(), new BmpEncoder(), new WebpEncoder(), new TiffEncoder(),
            new TgaEncoder { Compression = TgaCompression.None }, new PbmEncoder { Encoding = PbmEncoding.Binary, ColorType = PbmColorType.Rgb }];
        foreach (var (bytes, name) in encoders.Select(e => (Valid(e), e.GetType().Name)))
        {
            using var result = _processor.Process(bytes, name);
            Assert.Equal(1, result.BatchSize);
        }
    }

    static byte[] ValidJpeg()
    {
        using var image = ImageProcessorDecodingTests.Noise(64, 64, seed: 9);
        return ImageProcessorDecodingTests.Encode(image, new JpegEncoder());
    }

    [Fact]
    public void Complete_png_and_jpeg_pass_the_truncation_check()
    {
        using var png = _processor.Process(ValidPng(), "whole.png");
        using var jpeg = _processor.Process(ValidJpeg(), "whole.jpg");
        Assert.Equal(new long[] { 1, 3, 16, 16 }, png.Hr.shape);
        Assert.Equal(new long[] { 1, 3, 16, 16 }, jpeg.Hr.shape);
    }

    [Fact]
    public void A_header_claiming_400_megapixels_is_refused_before_decoding()
    {
        var bomb = PngHeaderOnly(20000, 20000);
        var error = Assert.Throws<InvalidImageException>(() => _processor.Process(bomb, "bomb.png"));
        Assert.Equal(InvalidImageReason.TooLarge, error.Reason);
        Assert.Equal<(int?, int?, long?)>((20000, 20000, ImagePreprocessOptions.DefaultMaxImagePixels), (error.Width, error.Height, error.MaxImagePixels));
        Assert.Equal("bomb.png", error.ImageName);
        Assert.StartsWith("bomb.png:", error.Message);
    }

    [Fact]
    public void A_header_claiming_60000_by_60000_pixels_is_refused_before_decoding()
    {
        var bomb = PngHeaderOnly(60000, 60000); // 3.6 gigapixels declared in a 57-byte file
        var error = Assert.Throws<InvalidImageException>(() => _processor.Process(bomb, "huge.png"));
        Assert.Equal(InvalidImageReason.TooLarge, error.Reason);
        Assert.Equal<(int?, int?)>((60000, 60000), (error.Width, error.Height));
        Assert.Equal("huge.png", error.ImageName);
        Assert.StartsWith("huge.png:", error.Message);
        Assert.Contains("60000×60000", error.Message);
    }

    [Fact]
    public void A_one_pixel_image_fills_the_model_sizes_with_its_colour()
    {
        using var image = new SixLabors.ImageSharp.Image<SixLabors.ImageSharp.PixelFormats.Rgb24>(1, 1);
        image[0, 0] = new SixLabors.ImageSharp.PixelFormats.Rgb24(200, 30, 90);
        using var scope = TorchSharp.torch.NewDisposeScope();
        using var result = _processor.Process(ImageProcessorDecodingTests.Encode(image, new PngEncoder()), "dot.png");
        Assert.Equal(new long[] { 1, 3, 16, 16 }, result.Hr.shape);
        Assert.Equal(new long[] { 1, 3, 8, 8 }, result.Lr.shape);
        for (int c = 0; c < 3; c++)
        {
            using var channel = result.Hr[0, c];
            Assert.True(channel.allclose(channel[0, 0].expand_as(channel), rtol: 0, atol: 1e-6), $"channel {c} is not uniform");
        }
    }

    [Fact]
    public void The_pixel_budget_is_configurable()
    {
        var png = ValidPng(40, 30); // 1200 pixels
        var tight = new ImageProcessor(_processor.Options with { MaxImagePixels = 1199 });
        Assert.Equal(InvalidImageReason.TooLarge, Assert.Throws<InvalidImageException>(() => tight.Process(png, "small.png")).Reason);
        using var result = new ImageProcessor(_processor.Options with { MaxImagePixels = 1200 }).Process(png, "small.png");
        Assert.Equal(1, result.BatchSize);
    }

    public static TheoryData<string> BadInputs =>
        ["empty", "truncated png", "png without its IEND chunk", "png without pixel data", "truncated jpeg", "truncated gif", "gif cut after its descriptor",
         "truncated bmp", "truncated webp", "truncated tiff", "truncated tga", "truncated pbm", "random bytes", "text"];

    static byte[] Bad(string kind) => kind switch
    {
        "empty" => [],
        "truncated png" => ValidPng()[..(ValidPng().Length / 2)],
        "png without its IEND chunk" => ValidPng()[..^12], // cut at a chunk boundary: every chunk before it is whole
        "truncated jpeg" => ValidJpeg()[..(ValidJpeg().Length * 2 / 3)],
        "truncated gif" => Valid(new GifEncoder())[..(Valid(new GifEncoder()).Length * 2 / 3)],
        "gif cut after its descriptor" => Valid(new GifEncoder())[..(Valid(new GifEncoder()).Length - 30)],
        "truncated bmp" => TwoThirds(new BmpEncoder()),
        "truncated webp" => TwoThirds(new WebpEncoder()),
        "truncated tiff" => TwoThirds(new TiffEncoder()),
        "truncated tga" => TwoThirds(new TgaEncoder { Compression = TgaCompression.None }),
        "truncated pbm" => TwoThirds(new PbmEncoder { Encoding = PbmEncoding.Binary, ColorType = PbmColorType.Rgb }),
        "png without pixel data" => PngHeaderOnly(4, 4),
        "random bytes" => RandomBytes(),
        _ => System.Text.Encoding.UTF8.GetBytes("{\"not\": \"an image\"}"),
    };

    static byte[] RandomBytes()
    {
        var bytes = new byte[4096];
        new Random(17).NextBytes(bytes);
        return bytes;
    }

    [Theory]
    [MemberData(nameof(BadInputs))]
    public void Bad_bytes_raise_a_typed_error_naming_the_input(string kind)
    {
        var error = Assert.Throws<InvalidImageException>(() => _processor.Process(Bad(kind), $"upload-{kind}"));
        Assert.Equal(InvalidImageReason.Unreadable, error.Reason);
        Assert.Null(error.MaxImagePixels);
        Assert.Equal($"upload-{kind}", error.ImageName);
        Assert.StartsWith($"upload-{kind}:", error.Message);
    }

    [Theory]
    [MemberData(nameof(BadInputs))]
    public void Bad_files_and_streams_are_named_too(string kind)
    {
        using var files = new TempFiles();
        var path = files.Write("photo.png", Bad(kind));
        var fromFile = Assert.ThrowsAny<InvalidImageException>(() => _processor.Process(path));
        Assert.Contains(path, fromFile.Message);
        var fromStream = Assert.ThrowsAny<InvalidImageException>(() => _processor.Process(new ForwardOnlyStream(Bad(kind)), "request body"));
        Assert.StartsWith("request body:", fromStream.Message);
    }

    [Fact]
    public void Directories_devices_and_oversized_files_are_refused_by_name_before_they_are_read()
    {
        var directory = Assert.Throws<InvalidImageException>(() => _processor.Process(Path.GetTempPath()));
        Assert.Contains("directory", directory.Message);
        // /dev/zero reports size 0 and never ends: refused after one byte, not read to exhaustion.
        var device = Assert.Throws<InvalidImageException>(() => _processor.Process("/dev/zero"));
        Assert.Contains("not a regular file", device.Message);

        using var files = new TempFiles();
        var tight = new ImageProcessor(_processor.Options with { MaxImagePixels = 1000 });
        var big = files.Write("big.png", new byte[1000 * 8 + (1 << 20) + 1]);
        var oversized = Assert.Throws<InvalidImageException>(() => tight.Process(big));
        Assert.Contains(big, oversized.Message);
        Assert.Contains("pixel budget", oversized.Message);
    }

    [Fact]
    public void A_missing_file_is_an_io_error_naming_it()
    {
        var path = Path.Combine(Path.GetTempPath(), $"no-such-image-{Guid.NewGuid():N}.png");
        var error = Assert.Throws<FileNotFoundException>(() => _processor.Process(path));
        Assert.Contains(path, error.Message);
    }
}
