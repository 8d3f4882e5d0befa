using TorchSharp;
using TorchSharp.Modules;
using TorchSharp.Utils;
using static TorchSharp.torch;

namespace MiniGemini.Modeling;

/// <summary>timm <c>LayerNorm2d</c>: LayerNorm over the channels of an NCHW map, at every pixel.</summary>
internal sealed class LayerNorm2d : nn.Module<Tensor, Tensor>
{
    [ComponentName(Name = "weight")] readonly Parameter _weight;
    [ComponentName(Name = "bias")] readonly Parameter _bias;
    readonly double _eps;

    public LayerNorm2d(long channels, double eps) : base(nameof(LayerNorm2d))
    {
        _weight = new Parameter(ones(channels));
        _bias = new Parameter(zeros(channels));
        _eps = eps;
        RegisterComponents();
    }

    public override Tensor forward(Tensor x) =>
        nn.functional.layer_norm(x.permute(0, 2, 3, 1), [_weight.shape[0]], _weight, _bias, _eps) // [B, H, W, C]
            .permute(0, 3, 1, 2);                                                                   // [B, C, H, W]
}
