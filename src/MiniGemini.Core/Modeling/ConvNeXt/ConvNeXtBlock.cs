using MiniGemini.Checkpoints;
using TorchSharp;
using TorchSharp.Modules;
using TorchSharp.Utils;
using static TorchSharp.torch;

namespace MiniGemini.Modeling;

/// <summary>
/// timm <c>ConvNeXtBlock</c> with <c>conv_mlp=False</c>: depthwise 7×7 conv, then LayerNorm and the MLP channels-last,
/// a per-channel layer scale <c>gamma</c>, and the residual.
/// </summary>
internal sealed class ConvNeXtBlock : nn.Module<Tensor, Tensor>
{
    [ComponentName(Name = "conv_dw")] readonly Conv2d _convDw;
    [ComponentName(Name = "norm")] readonly LayerNorm _norm;
    [ComponentName(Name = "mlp")] readonly ConvNeXtMlp _mlp;
    [ComponentName(Name = "gamma")] readonly Parameter _gamma;

    public ConvNeXtBlock(long channels, double eps) : base(nameof(ConvNeXtBlock))
    {
        _convDw = Conv.Conv2d(channels, channels, 7, padding: 3, groups: channels);
        _norm = nn.LayerNorm(channels, eps);
        _mlp = new ConvNeXtMlp(channels);
        _gamma = new Parameter(full(channels, 1e-6));
        RegisterComponents();
    }

    public override Tensor forward(Tensor x)
    {
        // A scope per block frees the [B, H, W, 4C] MLP activations as soon as the block is done.
        using var scope = NewDisposeScope();
        var h = _convDw.call(x).permute(0, 2, 3, 1); // [B, H, W, C]
        // Scaling by gamma before permuting back multiplies the same elements as timm's gamma.reshape(1, -1, 1, 1).
        h = TensorHelpers.MulInto(_mlp.call(_norm.call(h)), _gamma);   // [B, H, W, C]
        return h.permute(0, 3, 1, 2).Plus(x).MoveToOuterDisposeScope(); // [B, C, H, W]
    }
}

/// <summary>timm <c>Mlp</c>: fc1 (C → 4C), exact (erf) GELU, fc2 (4C → C).</summary>
internal sealed class ConvNeXtMlp : nn.Module<Tensor, Tensor>
{
    [ComponentName(Name = "fc1")] readonly Linear _fc1;
    [ComponentName(Name = "fc2")] readonly Linear _fc2;

    public ConvNeXtMlp(long channels) : base(nameof(ConvNeXtMlp))
    {
        _fc1 = LoadingLayers.Linear(channels, 4 * channels);
        _fc2 = LoadingLayers.Linear(4 * channels, channels);
        RegisterComponents();
    }

    public override Tensor forward(Tensor x) => _fc2.call(nn.functional.gelu(_fc1.call(x), inplace: true)); // [..., C]
}
