using MiniGemini.Checkpoints;
using TorchSharp;
using TorchSharp.Modules;
using TorchSharp.Utils;
using static TorchSharp.torch;

namespace MiniGemini.Modeling;

/// <summary>
/// The ConvNeXt that encodes MGM's high-resolution image: timm's ConvNeXt trunk as open_clip wraps it, with the same
/// submodule names (<c>stem.*</c>, <c>stages.*</c>), so its state-dict keys are the checkpoint keys below
/// <c>visual.trunk.</c>. MGM uses the four stage outputs, fused by <see cref="ForwardFused"/>.
/// </summary>
/// <remarks>In eval mode (the default) forwards run under <c>inference_mode</c>: outputs are inference tensors (no autograd,
/// no in-place updates outside it). In train mode they record the autograd graph.</remarks>
public sealed partial class ConvNeXtEncoder : nn.Module<Tensor, IReadOnlyList<Tensor>>
{
    [ComponentName(Name = "stem")] readonly Sequential _stem;
    [ComponentName(Name = "stages")] readonly ModuleList<ConvNeXtStage> _stages;

    /// <summary>Builds a randomly initialised trunk; <see cref="FromPretrained"/> builds and loads one from its files.</summary>
    public ConvNeXtEncoder(ConvNeXtConfig config) : base(nameof(ConvNeXtEncoder))
    {
        if (config.Depths.Count == 0 || config.Depths.Count != config.Dims.Count)
            throw new ArgumentException($"ConvNeXt needs as many depths as dims (got {config.Depths.Count} and {config.Dims.Count}).", nameof(config));
        Config = config;
        // Patchify: 4×4 stride-4 conv, then LayerNorm over channels.
        _stem = nn.Sequential(Conv.Conv2d(config.InChannels, config.Dims[0], 4, stride: 4), new LayerNorm2d(config.Dims[0], config.NormEps));
        _stages = new ModuleList<ConvNeXtStage>(Enumerable.Range(0, config.Dims.Count)
            .Select(i => new ConvNeXtStage(config.Dims[Math.Max(i - 1, 0)], config.Dims[i], config.Depths[i], config.NormEps, downsample: i > 0))
            .ToArray());
        RegisterComponents();
        eval(); // inference by default; a trainer switches to train mode
    }

    /// <summary>The trunk's configuration.</summary>
    public ConvNeXtConfig Config { get; }

    /// <summary><c>stem</c>: Conv2d + LayerNorm2d (exposed for loading and tests).</summary>
    internal Sequential Stem => _stem;

    /// <summary><c>stages</c> (exposed for loading and tests).</summary>
    internal ModuleList<ConvNeXtStage> Stages => _stages;

    /// <summary>
    /// Stem and stages: the output of every stage, <c>[B, C_i, H/2^(i+2), W/2^(i+2)]</c> (192/96/48/24 for a 768 input),
    /// as MGM's <c>OpenCLIPVisionTower</c> collects them. The caller owns the tensors.
    /// </summary>
    /// <remarks>
    /// The shapes are NCHW but the memory is channels-last (the stem's LayerNorm2d leaves it so, and every block keeps
    /// it), as in PyTorch: LayerNorm and MLP then read contiguous rows, and a later <c>permute(0, 2, 3, 1)</c> is free.
    /// Use <c>reshape</c>, not <c>view</c>, on the outputs.
    /// </remarks>
    /// <param name="pixels">Normalised pixels <c>[B, C, H, W]</c> (the HR image, 768 or 1536 in MGM).</param>
    public override IReadOnlyList<Tensor> forward(Tensor pixels)
    {
        CheckPixels(pixels);
        using var scope = NewDisposeScope();
        using var _ = inference_mode(!training);
        var x = _stem.call(pixels.to(_stem.parameters().First().dtype)); // [B, C0, H/4, W/4]
        var outputs = new List<Tensor>(_stages.Count);
        foreach (var stage in _stages)
        {
            x = stage.call(x); // [B, C_i, H/2^(i+2), W/2^(i+2)]
            outputs.Add(x);
        }
        foreach (var output in outputs) output.MoveToOuterDisposeScope();
        return outputs;
    }

    /// <summary>
    /// MGM's aux features: the stages fused by <see cref="MultiStageFusion"/>, <c>[B, ΣC_i, H/4, W/4]</c>
    /// (<c>[B, 2880, 192, 192]</c> for a 768 input), channels-last in memory like the stages.
    /// </summary>
    public Tensor ForwardFused(Tensor pixels)
    {
        using var scope = NewDisposeScope();
        using var _ = inference_mode(!training);
        return MultiStageFusion.Fuse(forward(pixels)).MoveToOuterDisposeScope();
    }

    void CheckPixels(Tensor pixels)
    {
        var shape = pixels.shape;
        if (shape.Length != 4 || shape[1] != Config.InChannels || shape[2] < 4 || shape[3] < 4)
            throw new ArgumentException(
                $"ConvNeXt expects pixels [B, {Config.InChannels}, H, W] with H, W ≥ 4 but got {TensorHelpers.Shape(shape)}.", nameof(pixels));
    }
}
