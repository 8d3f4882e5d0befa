using MiniGemini.Checkpoints;
using MiniGemini.Modeling;
using MiniGemini.Tests.Parity;
using MiniGemini.Vision;
using TorchSharp;
using Xunit;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace MiniGemini.Tests.Vision;

public sealed class ConvNeXtEncoderTests(ITestOutputHelper output) : IDisposable
{
    readonly string _dir = Directory.CreateTempSubdirectory("mgm-convnext-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    public static TheoryData<string> ConvNeXtCases => FixtureCatalog.Cases(FixtureKind.ConvNeXt);

    static string ConvNeXtTiny => FixtureCatalog.Bundled("convnext-tiny");
    static string MgmTowerFolder => Path.Combine(FixtureCatalog.Bundled("mgm-tiny"), "openclip-convnext");
    static string EmbeddedTowers => Path.Combine(FixtureCatalog.Bundled("mgm-tiny-embedded-towers"), "model", "model.safetensors");

    /// <summary>
    /// The fusion upsamples channels-last stages (the ConvNeXt's) a few channels at a time into an NCHW map: the values of
    /// concatenating the whole stages upsampled at once, bit for bit; other stages as before.
    /// </summary>
    [Theory]
    [InlineData(ScalarType.Float32, true)]
    [InlineData(ScalarType.BFloat16, true)]
    [InlineData(ScalarType.BFloat16, false)]
    public void Fusing_a_few_channels_at_a_time_gives_the_concatenation_of_the_whole_stages(ScalarType dtype, bool channelsLast)
    {
        using var scope = NewDisposeScope();
        using var generator = new Generator(9);
        Tensor Stage(long channels, long side) => channelsLast
            ? randn([2, side, side, channels], generator: generator).to(dtype).permute(0, 3, 1, 2)   // [2, C, s, s], NHWC in memory
            : randn([2, channels, side, side], generator: generator).to(dtype);
        var stages = new[] { Stage(32, 16), Stage(64, 8), Stage(100, 4), Stage(128, 2) };
        var size = new long[] { 16, 16 };
        var expected = cat(stages.Select((stage, i) => i == 0 ? stage
            : nn.functional.interpolate(stage.to(ScalarType.Float32), size, mode: InterpolationMode.Bilinear, align_corners: false).to(dtype)).ToList(), 1);
        var fused = MultiStageFusion.Fuse(stages, chunkBytes: 1);                 // 32 channels at a time: 2, 4 and 4 chunks
        Assert.True(fused.Equals(expected), $"{dtype}: other values");
        Assert.True(fused.is_contiguous(), $"{dtype}: not NCHW");
    }

    [Theory]
    [MemberData(nameof(ConvNeXtCases))]
    public void Matches_the_reference_stem_stages_and_fused_map_from_every_file_format(string id)
    {
        var folder = FixtureCatalog.Resolve(id);
        var files = new[] { "open_clip_model.safetensors", "open_clip_pytorch_model.bin" }.Select(f => Path.Combine(folder, f)).Where(File.Exists).ToList();
        Assert.NotEmpty(files);
        using var io = FixtureIo.Open(folder);
        foreach (var file in files)
        {
            var name = $"{id}/{Path.GetFileName(file)}";
            using var encoder = ConvNeXtEncoder.FromPretrained(file);
            using var scope = NewDisposeScope();
            var pixels = io["pixel_values"];

            using (inference_mode()) Check(io["stem"], encoder.Stem.call(pixels), $"{name} stem");
            var stages = encoder.call(pixels);
            Assert.Equal(io.Keys.Count(k => k.StartsWith("stage_", StringComparison.Ordinal)), stages.Count);
            for (int i = 0; i < stages.Count; i++) Check(io[$"stage_{i}"], stages[i], $"{name} stage_{i}");
            Check(io["fused"], encoder.ForwardFused(pixels), $"{name} fused");
        }
    }

    void Check(Tensor expected, Tensor actual, string name) =>
        output.WriteLine($"{name}: max |Δ| = {TensorAssert.Close(expected, actual, name):E3}");

    [Fact]
    public void Without_a_config_the_architecture_is_read_from_the_checkpoint()
    {
        Assert.False(File.Exists(Path.Combine(MgmTowerFolder, "open_clip_config.json")));
        using var encoder = ConvNeXtEncoder.FromPretrained(MgmTowerFolder);
        Assert.Equal([1, 1, 2, 1], encoder.Config.Depths);
        Assert.Equal([16, 32, 48, 64], encoder.Config.Dims);
        Assert.Equal(1e-6, encoder.Config.NormEps);
        Assert.Equal(160, encoder.Config.FusedChannels);

        using var io = FixtureIo.Open(FixtureCatalog.Bundled("mgm-tiny"));
        using var scope = NewDisposeScope();
        Check(io["hr_fused"], encoder.ForwardFused(io["pixel_values_hr"]), "mgm-tiny hr_fused");
    }

    [Fact]
    public void The_tower_inside_an_MGM_checkpoint_has_the_same_weights_as_the_open_clip_file()
    {
        using var separate = ConvNeXtEncoder.FromPretrained(MgmTowerFolder);
        using var source = Checkpoint.Open(EmbeddedTowers);
        Assert.True(TowerResolver.IsConvNeXtEmbedded(source));
        using var embedded = ConvNeXtEncoder.Load(source, prefix: "model.vision_tower_aux.");
        Assert.Equal(separate.Config.Depths, embedded.Config.Depths);
        Assert.Equal(separate.Config.Dims, embedded.Config.Dims);
        var compared = VisionTestFiles.AssertSameWeights(separate, embedded);
        Assert.Equal(4 + 3 * 4 + 5 * 9, compared); // stem, 3 downsamples, 5 blocks
    }

    [Fact]
    public void A_wrong_shape_is_a_mismatch_that_names_the_key()
    {
        var path = VisionTestFiles.Rewrite(Path.Combine(ConvNeXtTiny, "open_clip_model.safetensors"), Path.Combine(_dir, "open_clip_model.safetensors"),
            t => t["visual.trunk.stages.2.blocks.1.gamma"] = t["visual.trunk.stages.2.blocks.1.gamma"].narrow(0, 0, 47).contiguous());
        using var source = Checkpoint.Open(path);
        var e = Assert.Throws<ModelLoadException>(() => ConvNeXtEncoder.Load(source));
        Assert.NotNull(e.Report);
        Assert.Equal("2.blocks.1.gamma", e.TensorName);
        Assert.Contains("visual.trunk.stages.2.blocks.1.gamma is [47] in the checkpoint but [48] in the module", e.Message);
    }

    [Fact]
    public void A_config_that_disagrees_with_the_checkpoint_is_a_mismatch()
    {
        using var source = Checkpoint.Open(Path.Combine(ConvNeXtTiny, "open_clip_pytorch_model.bin"));
        var wrong = new ConvNeXtConfig { Depths = [1, 1, 3, 1], Dims = [16, 32, 48, 64] };
        var e = Assert.Throws<ModelLoadException>(() => ConvNeXtEncoder.Load(source, wrong));
        Assert.NotNull(e.Report);
        Assert.Equal(["2.blocks.2.conv_dw.bias", "2.blocks.2.conv_dw.weight", "2.blocks.2.gamma", "2.blocks.2.mlp.fc1.bias", "2.blocks.2.mlp.fc1.weight",
            "2.blocks.2.mlp.fc2.bias", "2.blocks.2.mlp.fc2.weight", "2.blocks.2.norm.bias", "2.blocks.2.norm.weight"], e.Report!.Missing);
    }

    [Fact]
    public void Heads_and_text_tower_are_skipped_by_rule_but_other_keys_are_errors()
    {
        var file = Path.Combine(ConvNeXtTiny, "open_clip_model.safetensors");
        using (var source = Checkpoint.Open(file))
        {
            var outside = source.Keys.Where(k => !k.StartsWith("visual.trunk.stem.", StringComparison.Ordinal) && !k.StartsWith("visual.trunk.stages.", StringComparison.Ordinal)).ToList();
            Assert.Equal(["logit_scale", "text.token_embedding.weight", "visual.head.mlp.fc1.weight"], outside.Order(StringComparer.Ordinal));
            Assert.All(outside, k => Assert.True(ConvNeXtEncoder.IsForeignKey(k), k));
        }
        Assert.True(ConvNeXtEncoder.IsForeignKey("visual.trunk.head.norm.weight"));
        Assert.True(ConvNeXtEncoder.IsForeignKey("transformer.resblocks.0.attn.in_proj_weight"));

        var stray = VisionTestFiles.Rewrite(file, Path.Combine(_dir, "stray.safetensors"), t => t["visual.trunk.norm.weight"] = ones(64));
        using (var source = Checkpoint.Open(stray))
        {
            var e = Assert.Throws<ModelLoadException>(() => ConvNeXtEncoder.Load(source));
            Assert.NotNull(e.Report);
            Assert.Equal(["visual.trunk.norm.weight"], e.Report!.Unexpected);
        }

        var inside = VisionTestFiles.Rewrite(file, Path.Combine(_dir, "inside.safetensors"), t => t["visual.trunk.stages.0.downsample.0.weight"] = ones(16));
        using (var source = Checkpoint.Open(inside))
        {
            var e = Assert.Throws<ModelLoadException>(() => ConvNeXtEncoder.Load(source));
            Assert.NotNull(e.Report);
            Assert.Equal(["0.downsample.0.weight"], e.Report!.Unexpected); // stage 0 has no downsample
        }
    }

    [Fact]
    public void A_checkpoint_without_a_ConvNeXt_is_a_clear_error()
    {
        using var source = Checkpoint.Open(Path.Combine(FixtureCatalog.Bundled("mgm-tiny"), "model", "model.safetensors"));
        var e = Assert.Throws<ModelLoadException>(() => ConvNeXtEncoder.Load(source));
        Assert.Contains("no ConvNeXt trunk found", e.Message);
    }

    [Theory]
    [InlineData("convnext_large_d_320", 192, 1e-6)]
    [InlineData("model_zoo/OpenAI/openclip-convnext-large-d-320-laion2B-s29B-b131K-ft-soup", 192, 1e-6)]
    [InlineData("convnext_large", 192, 1e-6)]
    [InlineData("convnext_base_w_320", 128, 1e-6)]
    [InlineData("convnext_xxlarge", 384, 1e-5)]
    public void Preset_names_follow_MGM_and_timm(string name, int firstDim, double eps)
    {
        var config = ConvNeXtConfig.FromName(name);
        Assert.NotNull(config);
        Assert.Equal(firstDim, config.Dims[0]);
        Assert.Equal(eps, config.NormEps);
    }

    [Theory]
    [InlineData("convnext_xlarge")]
    [InlineData("openclip-convnext")]
    [InlineData("convnext_tiny_fixture")]
    public void Unknown_names_give_no_preset(string name) => Assert.Null(ConvNeXtConfig.FromName(name));

    [Fact]
    public void ConvNeXt_large_d_320_has_timm_keys_and_shapes()
    {
        var shapes = VisionTestFiles.MetaShapes(() => new ConvNeXtEncoder(ConvNeXtConfig.LargeD320));
        Assert.Equal(340, shapes.Count); // 36 blocks × 9 + stem 4 + downsamples 12 (spec §3.5)
        Assert.Equal(2880, ConvNeXtConfig.LargeD320.FusedChannels);
        Assert.Equal([192L, 3, 4, 4], shapes["stem.0.weight"]);
        Assert.Equal([192L], shapes["stem.1.weight"]);
        Assert.DoesNotContain(shapes.Keys, k => k.StartsWith("stages.0.downsample", StringComparison.Ordinal));
        Assert.Equal([384L, 192, 2, 2], shapes["stages.1.downsample.1.weight"]);
        Assert.Equal([384L], shapes["stages.2.downsample.0.weight"]); // LayerNorm2d over the incoming channels
        Assert.Equal([768L, 1, 7, 7], shapes["stages.2.blocks.26.conv_dw.weight"]);
        Assert.Equal([3072L, 768], shapes["stages.2.blocks.26.mlp.fc1.weight"]);
        Assert.Equal([1536L], shapes["stages.3.blocks.2.gamma"]);
    }

    [Fact]
    public void Forwards_leave_no_live_tensors_behind()
    {
        using var encoder = ConvNeXtEncoder.FromPretrained(ConvNeXtTiny);
        using var pixels = randn(1, 3, 64, 64);
        using (encoder.ForwardFused(pixels)) { } // warm-up

        DisposeScopeManager.Statistics.Reset();
        for (int i = 0; i < 4; i++)
        {
            using (encoder.ForwardFused(pixels)) { }
            foreach (var stage in encoder.call(pixels)) stage.Dispose();
            Assert.Equal(0, VisionTestFiles.LiveTensors);
        }
        var kept = encoder.ForwardFused(pixels);
        Assert.Equal(1, VisionTestFiles.LiveTensors);
        kept.Dispose();
        Assert.Equal(0, VisionTestFiles.LiveTensors);
    }
}
