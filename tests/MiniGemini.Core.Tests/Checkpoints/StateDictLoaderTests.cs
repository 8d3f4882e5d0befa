using MiniGemini.Checkpoints;
using MiniGemini.Modeling;
using MiniGemini.Tests.Parity;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace MiniGemini.Tests.Checkpoints;

public sealed class StateDictLoaderTests : IDisposable
{
    readonly string _dir = Directory.CreateTempSubdirectory("mgm-load-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    sealed class Stem : nn.Module
    {
        // Same names as timm's ConvNeXt stem: Sequential(conv, norm) -> "0", "1".
        public Stem() : base(nameof(Stem))
        {
            register_module("0", nn.Conv2d(3, 16, 4, stride: 4));
            register_module("1", nn.LayerNorm(16));
        }
    }

    static string ConvNeXtBin => Path.Combine(FixtureCatalog.Bundled("convnext-tiny"), "open_clip_pytorch_model.bin");

    /// <summary>Writes <paramref name="tensors"/> to a safetensors file in the temp folder and opens it.</summary>
    ITensorSource Saved(string name, Dictionary<string, Tensor> tensors)
    {
        var path = Path.Combine(_dir, name);
        SafetensorsWriter.Write(path, tensors);
        return Checkpoint.Open(path);
    }

    [Fact]
    public void Loads_a_prefix_sub_tree_exactly()
    {
        using var source = Checkpoint.Open(ConvNeXtBin);
        using var stem = new Stem();
        var report = StateDictLoader.Load(stem, source, "visual.trunk.stem.");
        Assert.Equal(4, report.Loaded.Count);
        Assert.Empty(report.Missing);
        Assert.Empty(report.Unexpected);
        using var expected = source.Load("visual.trunk.stem.0.weight");
        Assert.True(stem.state_dict()["0.weight"].Equals(expected));
    }

    [Fact]
    public void Shape_mismatch_is_an_error_even_when_copy_would_broadcast()
    {
        using var scope = NewDisposeScope();
        // A [1] bias would broadcast silently into a [16] parameter with copy_.
        using var source = Saved("bias.safetensors", new Dictionary<string, Tensor>
        {
            ["0.weight"] = randn(16, 3, 4, 4), ["0.bias"] = ones(1), ["1.weight"] = ones(16), ["1.bias"] = zeros(16),
        });
        using var stem = new Stem();
        var before = stem.state_dict()["0.weight"].clone();
        var e = Assert.Throws<ModelLoadException>(() => StateDictLoader.Load(stem, source));
        Assert.NotNull(e.Report);
        Assert.Contains("0.bias is [1] in the checkpoint but [16] in the module", e.Message);
        Assert.Equal("0.bias", e.TensorName);
        Assert.True(stem.state_dict()["0.weight"].Equals(before), "nothing may be copied when the check fails");
    }

    [Fact]
    public void Missing_and_unexpected_keys_are_listed()
    {
        using var scope = NewDisposeScope();
        using var source = Saved("partial.safetensors", new Dictionary<string, Tensor>
        {
            ["0.weight"] = randn(16, 3, 4, 4), ["0.bias"] = zeros(16), ["1.weight"] = ones(16), ["extra.weight"] = ones(2),
        });
        using var stem = new Stem();
        var e = Assert.Throws<ModelLoadException>(() => StateDictLoader.Load(stem, source));
        Assert.NotNull(e.Report);
        Assert.Equal(["1.bias"], e.Report!.Missing);
        Assert.Equal(["extra.weight"], e.Report!.Unexpected);
        Assert.Contains("missing: 1.bias", e.Message);
        Assert.Contains("unexpected: extra.weight", e.Message);
    }

    [Fact]
    public void Foreign_keys_are_skipped_by_rule_and_allowed_missing_keys_pass()
    {
        using var scope = NewDisposeScope();
        using var source = Saved("rules.safetensors", new Dictionary<string, Tensor>
        {
            ["0.weight"] = randn(16, 3, 4, 4), ["0.bias"] = zeros(16), ["1.weight"] = ones(16), ["head.fc.weight"] = ones(2),
        });
        using var stem = new Stem();
        var report = StateDictLoader.Load(stem, source, "", new LoadOptions
        {
            IsForeign = k => k.StartsWith("head.", StringComparison.Ordinal),
            MayBeMissing = k => k == "1.bias",
        });
        Assert.Equal(["head.fc.weight"], report.Skipped);
        Assert.Equal(["1.bias"], report.AllowedMissing);
        Assert.Equal(3, report.Loaded.Count);
    }

    [Fact]
    public void Integer_data_for_a_floating_point_weight_is_refused_naming_the_key()
    {
        using var scope = NewDisposeScope();
        using var source = Saved("int.safetensors", new Dictionary<string, Tensor>
        {
            ["0.weight"] = randint(0, 5, [16, 3, 4, 4], ScalarType.Int32), ["0.bias"] = zeros(16), ["1.weight"] = ones(16), ["1.bias"] = zeros(16),
        });
        using var stem = new Stem();
        var before = stem.state_dict()["0.bias"].clone();
        var e = Assert.Throws<ModelLoadException>(() => StateDictLoader.Load(stem, source));
        Assert.NotNull(e.Report);
        Assert.Contains("dtype mismatch: 0.weight holds Int32 data in the checkpoint but the module's tensor is Float32", e.Message);
        Assert.Equal("0.weight", e.TensorName);
        Assert.True(stem.state_dict()["0.bias"].Equals(before), "nothing may be copied when the check fails");
    }

    [Fact]
    public void Values_are_converted_to_the_parameter_dtype()
    {
        using var scope = NewDisposeScope();
        var weight = randn(16, 3, 4, 4).to(ScalarType.BFloat16);
        using var source = Saved("bf16.safetensors", new Dictionary<string, Tensor>
        {
            ["0.weight"] = weight, ["0.bias"] = zeros(16, ScalarType.BFloat16), ["1.weight"] = ones(16, ScalarType.BFloat16), ["1.bias"] = zeros(16, ScalarType.BFloat16),
        });
        using var stem = new Stem();
        StateDictLoader.Load(stem, source);
        var loaded = stem.state_dict()["0.weight"];
        Assert.Equal(ScalarType.Float32, loaded.dtype);
        Assert.True(loaded.Equals(weight.to(ScalarType.Float32)));
    }

    /// <summary>A source that fails to read one key, as a file that cannot be read would.</summary>
    sealed class FailingSource(ITensorSource inner, string failingKey) : ITensorSource
    {
        public string Location => inner.Location;
        public IReadOnlyCollection<string> Keys => inner.Keys;
        public bool TryGetInfo(string key, out TensorInfo info) => inner.TryGetInfo(key, out info);
        public Tensor Load(string key) => inner.Load(key);

        public void ReadInto(string key, Tensor destination)
        {
            if (key == failingKey) throw new ModelLoadException($"{Location}: '{key}' cannot be read.", Location, key);
            inner.ReadInto(key, destination);
        }

        public void Dispose() => inner.Dispose();
    }

    /// <summary>The load reads with two threads; the error of one of them is the load's error, of its own type.</summary>
    [Theory]
    [InlineData("0.bias")]
    [InlineData("1.weight")]
    public void A_read_that_fails_fails_the_load_with_its_own_error(string failingKey)
    {
        using var source = new FailingSource(Checkpoint.Open(ConvNeXtBin), "visual.trunk.stem." + failingKey);
        using var stem = new Stem();
        var e = Assert.Throws<ModelLoadException>(() => StateDictLoader.Load(stem, source, "visual.trunk.stem."));
        Assert.Equal("visual.trunk.stem." + failingKey, e.TensorName);
    }

    [Fact]
    public void FindPrefix_picks_the_layout_present()
    {
        using var source = Checkpoint.Open(Path.Combine(FixtureCatalog.Bundled("clip-vit-tiny-openai-layout"), "model.safetensors"));
        Assert.Equal("vision_model.", StateDictLoader.FindPrefix(source, "embeddings.class_embedding", "", "vision_model."));
        Assert.Null(StateDictLoader.FindPrefix(source, "no.such.key", "", "vision_model."));
    }
}
