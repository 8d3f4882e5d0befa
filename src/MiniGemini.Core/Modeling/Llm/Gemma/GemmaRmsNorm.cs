using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace MiniGemini.Modeling;

/// <summary>
/// Gemma's RMSNorm: the weight is stored as an offset from one and the multiply happens in float32 before the
/// cast back (HF <c>GemmaRMSNorm</c>: <c>(norm(x.float()) * (1 + w.float())).type_as(x)</c>).
/// </summary>
internal sealed class GemmaRmsNorm : nn.Module<Tensor, Tensor>
{
    Parameter weight;
    readonly double _eps;

    public GemmaRmsNorm(long size, double eps, Device device, ScalarType dtype) : base(nameof(GemmaRmsNorm))
    {
        weight = new Parameter(zeros(size, dtype: dtype, device: device), requires_grad: false);
        _eps = eps;
        RegisterComponents();
    }

    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        var scale = TensorHelpers.Cast(weight, ScalarType.Float32).add(Scalars.OneDouble, Scalars.One); // 1 + w
        return TensorHelpers.Cast(TensorHelpers.MulInto(RmsNorm.Normalize(x, _eps), scale), x.dtype).MoveToOuterDisposeScope();
    }
}
