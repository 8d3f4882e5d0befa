using System.Security.Cryptography;
using System.Text.Json;
using MiniGemini.Checkpoints;
using MiniGemini.Modeling;
using MiniGemini.Tests.Parity;
using MiniGemini.Vision;
using Xunit;
using Xunit.Abstractions;
using static TorchSharp.torch;
using static TorchSharp.torch.nn.functional;

namespace MiniGemini.Tests.Vision;

/// <summary>Parity of the pad → Pillow bicubic → normalize → bilinear LR path with the PyTorch/Pillow references.</summary>
public sealed class ImageProcessorTests(ITestOutputHelper output)
{
    // The preprocess fixture was written by transformers 5's torchvision-backed CLIPImageProcessor, whose bicubic
    // differs from Pillow's by ±1 level at a few pixels; hence loose bounds for the HR comparison.
    const double MeanTolerance = 0.02, MaxTolerance = 0.25;

    public static TheoryData<string> PreprocessCases => FixtureCatalog.Cases(FixtureKind.Preprocess);
    public static TheoryData<string> MgmCases => FixtureCatalog.Cases(FixtureKind.Mgm);

    internal static string DataFolder { get; } =
        Path.GetFullPath(Path.Combine(FixtureCatalog.ReferenceRoot, "..", "..", "MiniGemini.Core.Tests", "Vision", "ImageProcessorData"));

    [Theory]
    [MemberData(nameof(PreprocessCases))]
    public void Hr_and_lr_match_the_reference(string id)
    {
        var folder = FixtureCatalog.Resolve(id);
        using var config = JsonDocument.Parse(File.ReadAllText(Path.Combine(folder, "config.json")));
        double[] Doubles(string key) => [.. config.RootElement.GetProperty(key).EnumerateArray().Select(e => e.GetDouble())];
        using var io = FixtureIo.Open(folder);
        var hrKeys = io.Keys.Where(k => k.StartsWith("hr_", StringComparison.Ordinal)).Order(StringComparer.Ordinal).ToList();
        Assert.NotEmpty(hrKeys);
        foreach (var hrKey in hrKeys)
        {
            using var scope = NewDisposeScope();
            var expectedHr = io[hrKey];
            var expectedLr = io["lr_" + hrKey[3..]];
            var options = new ImagePreprocessOptions
            {
                HrSize = (int)expectedHr.shape[^1],
                LrSize = (int)expectedLr.shape[^1],
                Mean = Doubles("mean"),
                Std = Doubles("std"),
            };
            Assert.Equal(config.RootElement.GetProperty("pad_color").EnumerateArray().Select(e => (byte)e.GetInt32()),
                [options.PadColor.R, options.PadColor.G, options.PadColor.B]);
            using var result = new ImageProcessor(options).Process(Path.Combine(folder, "input.png"));

            var (hrMean, hrMax) = Difference(expectedHr, result.Hr, hrKey);
            output.WriteLine($"{id} {hrKey}: HR mean |Δ| = {hrMean:E3}, max |Δ| = {hrMax:E3}");
            Assert.True(hrMean <= MeanTolerance && hrMax <= MaxTolerance, $"{hrKey}: mean |Δ| {hrMean:E3}, max |Δ| {hrMax:E3}");

            var (lrMean, lrMax) = Difference(expectedLr, result.Lr, "lr from our HR");
            output.WriteLine($"{id} lr from our HR: mean |Δ| = {lrMean:E3}, max |Δ| = {lrMax:E3}");
            Assert.True(lrMean <= MeanTolerance && lrMax <= MaxTolerance, $"lr from our HR: mean |Δ| {lrMean:E3}, max |Δ| {lrMax:E3}");

            // From the reference HR tensor the LR step is plain torch arithmetic and must agree exactly.
            var lr = ImageProcessor.LowResolutionViews(expectedHr, options.LrSize, grid: 1, global: false);
            var (_, exactMax) = Difference(expectedLr, lr, "lr from reference HR");
            output.WriteLine($"{id} lr from reference HR: max |Δ| = {exactMax:E3}");
            Assert.True(exactMax <= 1e-5, $"lr from reference HR: max |Δ| {exactMax:E3}");
        }
    }

    [Theory]
    [MemberData(nameof(MgmCases))]
    public void Lr_views_match_the_end_to_end_fixture(string id)
    {
        // The MGM fixtures build their CLIP input from pixel_values_hr as MGM's cli.py does (crops, then the global view).
        var folder = FixtureCatalog.Resolve(id);
        var config = MgmConfig.Load(Path.Combine(folder, "model", "config.json"));
        using var io = FixtureIo.Open(folder);
        using var scope = NewDisposeScope();
        var expected = io["pixel_values_lr"];
        int views = config.ImageGrid * config.ImageGrid + (config.ImageGlobal && config.ImageGrid > 1 ? 1 : 0);
        Assert.Equal(views, expected.shape[0]);
        var lr = ImageProcessor.LowResolutionViews(io["pixel_values_hr"], (int)expected.shape[^1], config.ImageGrid, config.ImageGlobal);
        var (_, max) = Difference(expected, lr, "pixel_values_lr");
        output.WriteLine($"{id}: grid {config.ImageGrid}, global {config.ImageGlobal}, LR max |Δ| = {max:E3}");
        Assert.True(max <= 1e-5, $"{id} pixel_values_lr: max |Δ| {max:E3}");
    }

    [Theory]
    [InlineData(13, 9)]
    [InlineData(101, 77)]
    [InlineData(41, 60)]
    [InlineData(7, 29)]
    [InlineData(64, 64)]
    [InlineData(200, 3)]
    [InlineData(1, 1)]
    public void Bicubic_resize_is_byte_identical_to_pillow(int width, int height)
    {
        var source = ReadPng("resize_src.png");
        var expected = ReadPng($"resize_{width}x{height}.png");
        var actual = PillowResample.Bicubic(source, width, height);
        AssertSameBytes(expected, actual, $"{width}x{height}");
    }

    [Fact]
    public void Padded_fixture_image_resizes_to_pillows_bytes()
    {
        var input = ImageReader.Read(Path.Combine(FixtureCatalog.Bundled("preprocess"), "input.png"), new ImagePreprocessOptions());
        var square = input.ExpandToSquare((122, 116, 104));
        AssertSameBytes(ReadPng("pad_64.png"), PillowResample.Bicubic(square, 64, 64), "pad 64");
        var hash = Convert.ToHexStringLower(SHA256.HashData(PillowResample.Bicubic(square, 768, 768).Pixels));
        Assert.Equal(File.ReadAllText(Path.Combine(DataFolder, "pad_768.sha256")).Trim(), hash);
    }

    [Theory]
    [InlineData(5, 3, 0, 1)]   // wide: bands above and below
    [InlineData(2, 5, 1, 0)]   // tall: bands left and right, floor((5-2)/2) = 1
    [InlineData(3, 3, 0, 0)]
    public void Expand_to_square_centres_on_the_short_axis(int width, int height, int left, int top)
    {
        var image = new ImageRgb8(width, height);
        Array.Fill(image.Pixels, (byte)7);
        var square = image.ExpandToSquare((122, 116, 104));
        int side = Math.Max(width, height);
        Assert.Equal((side, side), (square.Width, square.Height));
        for (int y = 0; y < side; y++)
            for (int x = 0; x < side; x++)
            {
                bool inside = x >= left && x < left + width && y >= top && y < top + height;
                byte[] pixel = square.Pixels[((y * side + x) * 3)..((y * side + x) * 3 + 3)];
                Assert.Equal(inside ? [7, 7, 7] : new byte[] { 122, 116, 104 }, pixel);
            }
    }

    [Fact]
    public void Hd_views_are_row_major_crops_then_the_global_view()
    {
        using var scope = NewDisposeScope();
        int batch = 2, s = 8, g = 2;
        var hr = randn(batch, 3, 40, 40, generator: new TorchSharp.torch.Generator(5));
        var views = ImageProcessor.LowResolutionViews(hr, s, g, global: true);
        Assert.Equal(new long[] { batch * g * g + batch, 3, s, s }, views.shape);

        var full = interpolate(hr, [s * g, s * g], mode: InterpolationMode.Bilinear, align_corners: false);
        var globals = interpolate(full, [s, s], mode: InterpolationMode.Bilinear, align_corners: false);
        for (int b = 0; b < batch; b++)
        {
            for (int row = 0; row < g; row++)
                for (int col = 0; col < g; col++)
                {
                    var crop = full[b, .., (row * s)..((row + 1) * s), (col * s)..((col + 1) * s)];
                    Assert.True(crop.Equals(views[b * g * g + row * g + col]), $"crop ({row},{col}) of image {b}");
                }
            Assert.True(globals[b].Equals(views[batch * g * g + b]), $"global view of image {b}");
        }

        var cropsOnly = ImageProcessor.LowResolutionViews(hr, s, g, global: false);
        Assert.True(cropsOnly.Equals(views[..(batch * g * g)]));
        var normal = ImageProcessor.LowResolutionViews(hr, s, 1, global: true); // a global view needs a grid, as in MGM
        Assert.True(normal.Equals(interpolate(hr, [s, s], mode: InterpolationMode.Bilinear, align_corners: false)));
    }

    [Fact]
    public void A_batch_equals_its_images_processed_one_by_one()
    {
        var options = new ImagePreprocessOptions { HrSize = 32, LrSize = 8, Grid = 2, Global = true };
        var processor = new ImageProcessor(options);
        var wide = Png(ImageProcessorDecodingTests.Noise(23, 11, seed: 1));
        var tall = Png(ImageProcessorDecodingTests.Noise(9, 30, seed: 2));
        using var files = new TempFiles();
        using var batch = processor.Process([files.Write("wide.png", wide), files.Write("tall.png", tall)]);
        using var first = processor.Process(wide, "wide");
        using var second = processor.Process(tall, "tall");

        Assert.Equal(2, batch.BatchSize);
        Assert.Equal(5, batch.ViewsPerImage);
        Assert.Equal(new long[] { 2, 3, 32, 32 }, batch.Hr.shape);
        Assert.Equal(new long[] { 10, 3, 8, 8 }, batch.Lr.shape);
        Assert.True(batch.Hr[0].Equals(first.Hr[0]));
        Assert.True(batch.Hr[1].Equals(second.Hr[0]));
        // [crops of image 0 ; crops of image 1 ; global 0 ; global 1]
        Assert.True(batch.Lr[..4].allclose(first.Lr[..4], rtol: 0, atol: 1e-6));
        Assert.True(batch.Lr[4..8].allclose(second.Lr[..4], rtol: 0, atol: 1e-6));
        Assert.True(batch.Lr[8].allclose(first.Lr[4], rtol: 0, atol: 1e-6));
        Assert.True(batch.Lr[9].allclose(second.Lr[4], rtol: 0, atol: 1e-6));
    }

    [Fact]
    public void Options_follow_the_model_configs()
    {
        var folder = FixtureCatalog.Bundled("mgm-tiny-hd");
        var model = MgmConfig.Load(Path.Combine(folder, "model", "config.json"));
        var clip = ClipVisionConfig.Load(Path.Combine(folder, "clip-vit", "config.json"));
        var options = ImagePreprocessOptions.ForModel(model, clip);
        Assert.Equal((128, 56, 2, true, 5), (options.HrSize, options.LrSize, options.Grid, options.Global, options.ViewsPerImage));
        Assert.Equal(PreprocessorConfig.ClipMean, options.Mean);
        Assert.Equal(((byte)122, (byte)116, (byte)104), options.PadColor);

        var processor = new PreprocessorConfig { CropSize = 336, ImageMean = [0.5, 0.5, 0.5], ImageStd = [0.5, 0.5, 0.5] };
        var fromProcessor = ImagePreprocessOptions.ForModel(model, clip, processor);
        Assert.Equal(336, fromProcessor.LrSize);
        Assert.Equal(((byte)127, (byte)127, (byte)127), fromProcessor.PadColor);

        var noAux = model with { ImageSizeAux = null };
        var error = Assert.Throws<ModelLoadException>(() => ImagePreprocessOptions.ForModel(noAux, clip));
        Assert.Contains("image_size_aux", error.Message);
    }

    [Theory]
    [InlineData("HrSize")]
    [InlineData("Grid")]
    [InlineData("Std")]
    [InlineData("Mean")]
    public void Bad_options_are_refused_by_name(string property)
    {
        var options = property switch
        {
            "HrSize" => new ImagePreprocessOptions { HrSize = 0 },
            "Grid" => new ImagePreprocessOptions { Grid = -1 },
            "Std" => new ImagePreprocessOptions { Std = [0.2, 0, 0.2] },
            _ => new ImagePreprocessOptions { Mean = [0.5, 0.5] },
        };
        var error = Assert.ThrowsAny<ArgumentException>(() => new ImageProcessor(options));
        Assert.Contains(property, error.Message);
    }

    static (double Mean, double Max) Difference(Tensor expected, Tensor actual, string name)
    {
        Assert.True(expected.shape.SequenceEqual(actual.shape),
            $"{name}: shape [{string.Join(", ", actual.shape)}] differs from the reference [{string.Join(", ", expected.shape)}]");
        using var diff = (actual.to(ScalarType.Float64) - expected.to(ScalarType.Float64)).abs();
        return (diff.mean().item<double>(), diff.max().item<double>());
    }

    static ImageRgb8 ReadPng(string file) => ImageReader.Read(Path.Combine(DataFolder, file), new ImagePreprocessOptions());

    static void AssertSameBytes(ImageRgb8 expected, ImageRgb8 actual, string name)
    {
        Assert.Equal((expected.Width, expected.Height), (actual.Width, actual.Height));
        for (int i = 0; i < expected.Pixels.Length; i++)
            if (expected.Pixels[i] != actual.Pixels[i])
                Assert.Fail($"{name}: byte {i} (x {i / 3 % expected.Width}, y {i / 3 / expected.Width}, channel {i % 3}) is {actual.Pixels[i]}, Pillow gives {expected.Pixels[i]}");
    }

    static byte[] Png(SixLabors.ImageSharp.Image image)
    {
        using (image) return ImageProcessorDecodingTests.Encode(image, new SixLabors.ImageSharp.Formats.Png.PngEncoder());
    }
}
