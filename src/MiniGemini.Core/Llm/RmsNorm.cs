using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace MiniGemini.Llm;

/// <summary>
/// Llama's RMSNorm: normalised in float32, cast back to the input dtype, then scaled by <c>weight</c>
/// (HF <c>LlamaRMSNorm</c>; the cast happens before the multiply).
/// </summary>
internal sealed class RmsNorm : nn.Module<Tensor, Tensor>
{
    Parameter weight;
    readonly double _eps;

    public RmsNorm(long size, double eps, Device device, ScalarType dtype) : base(nameof(RmsNorm))
    {
        weight = new Parameter(ones(size, dtype: dtype, device: device), requires_grad: false);
        _eps = eps;
        RegisterComponents();
    }

    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        return (weight * Normalize(x, _eps).to(x.dtype)).MoveToOuterDisposeScope();
    }

    /// <summary><c>x / sqrt(mean(x²) + eps)</c> over the last dimension, in float32.</summary>
    internal static Tensor Normalize(Tensor x, double eps)
    {
        var x32 = x.to(ScalarType.Float32);
        return x32 * x32.square().mean([-1], keepdim: true).add_(eps).rsqrt_();
    }
}
