using MiniGemini.Checkpoints;
using MiniGemini.Modeling;
using MiniGemini.Tests.Parity;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace MiniGemini.Tests.Projection;

public sealed class VisionProjectorTests : IDisposable
{
    readonly string _dir = Directory.CreateTempSubdirectory("mgm-projector-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Theory]
    [InlineData("linear", "mm_projector.bias [96]; mm_projector.weight [96,64]")]
    [InlineData("mlp1x_gelu", "mm_projector.0.bias [96]; mm_projector.0.weight [96,64]")]
    [InlineData("mlp2x_gelu", "mm_projector.0.bias [96]; mm_projector.0.weight [96,64]; mm_projector.2.bias [96]; mm_projector.2.weight [96,96]")]
    [InlineData("mlp3x_gelu", "mm_projector.0.bias [96]; mm_projector.0.weight [96,64]; mm_projector.2.bias [96]; mm_projector.2.weight [96,96]; mm_projector.4.bias [96]; mm_projector.4.weight [96,96]")]
    [InlineData("identity", "")]
    public void Keys_follow_the_mgm_builder(string type, string keys)
    {
        using var projector = new VisionProjector(type, 64, 96);
        var actual = projector.state_dict().OrderBy(kv => kv.Key, StringComparer.Ordinal)
            .Select(kv => $"{kv.Key} [{string.Join(",", kv.Value.shape)}]");
        Assert.Equal(keys, string.Join("; ", actual));
        Assert.Equal(type, projector.ProjectorType);
    }

    [Fact]
    public void Mlp3x_gelu_is_linear_then_exact_gelu_and_linear_twice()
    {
        using var scope = NewDisposeScope();
        using var projector = new VisionProjector("mlp3x_gelu", 6, 5);
        var x = randn(2, 3, 6) * 3;
        var p = projector.state_dict();
        Tensor Gelu(Tensor t) => t * 0.5 * (1 + special.erf(t / Math.Sqrt(2)));
        var h = x.matmul(p["mm_projector.0.weight"].t()) + p["mm_projector.0.bias"];
        h = Gelu(h).matmul(p["mm_projector.2.weight"].t()) + p["mm_projector.2.bias"];
        h = Gelu(h).matmul(p["mm_projector.4.weight"].t()) + p["mm_projector.4.bias"];
        TensorAssert.Close(h, projector.call(x), "mlp3x_gelu", relative: 1e-6);
    }

    [Fact]
    public void Linear_and_identity_projectors()
    {
        using var scope = NewDisposeScope();
        var x = randn(2, 3, 6);
        using var identity = new VisionProjector("identity", 6, 6);
        Assert.True(identity.call(x).Equals(x));
        using var linear = new VisionProjector("linear", 6, 4);
        var p = linear.state_dict();
        TensorAssert.Close(x.matmul(p["mm_projector.weight"].t()) + p["mm_projector.bias"], linear.call(x), "linear", relative: 1e-6);
    }

    [Theory]
    [InlineData("mlp0x_gelu")]
    [InlineData("mlp33x_gelu")]
    [InlineData("mlp2000000000x_gelu")]
    [InlineData("mlpx_gelu")]
    [InlineData("MLP2X_GELU")]
    [InlineData("mlp2x_relu")]
    [InlineData("linear ")]
    [InlineData("qformer")]
    [InlineData("")]
    public void Unknown_projector_types_are_config_errors(string type)
    {
        var e = Assert.Throws<ModelLoadException>(() => new VisionProjector(type, 64, 96));
        Assert.Contains($"'{type}'", e.Message);
        Assert.Equal("mm_projector_type", e.ConfigKey);
    }

    [Fact]
    public void Loads_from_the_root_or_an_mgm_checkpoint()
    {
        using var scope = NewDisposeScope();
        using var source = new VisionProjector("mlp2x_gelu", 6, 5);
        foreach (var prefix in new[] { "", "model." })
        {
            var tensors = source.state_dict().ToDictionary(kv => prefix + kv.Key, kv => kv.Value);
            tensors[prefix + "vlm_uni_query_projector.0.weight"] = ones(6);
            tensors["lm_head.weight"] = zeros(3, 5);
            var path = Path.Combine(_dir, $"p{prefix.Length}.safetensors");
            SafetensorsWriter.Write(path, tensors);
            using var checkpoint = Checkpoint.Open(path);
            using var projector = new VisionProjector("mlp2x_gelu", 6, 5);
            Assert.Equal(prefix, projector.Load(checkpoint, prefix).Prefix);
            foreach (var (key, value) in source.state_dict())
                Assert.True(projector.state_dict()[key].Equals(value), key);

            // A checkpoint made for another projector type does not fit.
            using var linear = new VisionProjector("linear", 6, 5);
            var e = Assert.Throws<ModelLoadException>(() => linear.Load(checkpoint, prefix));
            Assert.NotNull(e.Report);
            Assert.Contains("mm_projector.weight", e.Message);
            using var identity = new VisionProjector("identity", 6, 6);
            Assert.NotNull(Assert.Throws<ModelLoadException>(() => identity.Load(checkpoint, prefix)).Report);
        }
        var none = Path.Combine(_dir, "none.safetensors");
        SafetensorsWriter.Write(none, new Dictionary<string, Tensor> { ["model.norm.weight"] = ones(4) });
        using var empty = Checkpoint.Open(none);
        using var mlp = new VisionProjector("mlp2x_gelu", 6, 5);
        Assert.Contains("mm_projector", Assert.Throws<ModelLoadException>(() => mlp.Load(empty)).Message);
        using var identityAlone = new VisionProjector("identity", 6, 6);
        Assert.Empty(identityAlone.Load(empty).Loaded);
    }

    [Fact]
    public void Built_from_an_mgm_config()
    {
        var config = MgmConfig.Load(Path.Combine(FixtureCatalog.Bundled("mgm-tiny"), "model", "config.json"));
        using var projector = VisionProjector.FromConfig(config);
        Assert.Equal("mlp2x_gelu", projector.ProjectorType);
        Assert.Equal(new long[] { 96, 64 }, projector.state_dict()["mm_projector.0.weight"].shape);
    }
}
