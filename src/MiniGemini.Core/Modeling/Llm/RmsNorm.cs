using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace MiniGemini.Modeling;

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
        // weight · norm(x) cast back, multiplied into the fresh normalised tensor.
        return TensorHelpers.MulInto(TensorHelpers.Cast(Normalize(x, _eps), x.dtype), weight).MoveToOuterDisposeScope();
    }

    /// <summary><c>x / sqrt(mean(x²) + eps)</c> over the last dimension, in at least float32 (a new tensor; x is left as it is).</summary>
    internal static Tensor Normalize(Tensor x, double eps)
    {
        // At least float32, as HF computes it; float64 stays float64 (gradient checks).
        if (x.dtype is ScalarType.Float32 or ScalarType.Float64) return x * InverseRms(x, eps);
        var x32 = x.to(ScalarType.Float32); // a copy of its own, so it is scaled in place
        return TensorHelpers.MulInto(x32, InverseRms(x32, eps));
    }

    /// <summary>x32 [.., n] → <c>1 / sqrt(mean(x²) + eps)</c> [.., 1].</summary>
    static Tensor InverseRms(Tensor x32, double eps)
    {
        using var epsilon = eps.ToScalar();
        // square() is pow(2) with a temporary scalar 2; the same op with the rooted one.
        return x32.pow(Scalars.Two).mean([-1], keepdim: true).add_(epsilon, Scalars.One).rsqrt_();
    }
}
