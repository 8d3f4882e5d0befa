using MiniGemini.Checkpoints;
using TorchSharp;
using static TorchSharp.torch;

namespace MiniGemini.Modeling;

/// <summary>
/// Rotary position embeddings as HF computes them: <c>inv_freq = 1/θ^(2i/d)</c> in float32 (optionally rescaled the
/// Llama-3 way), angles <c>position · inv_freq</c> in float32, cos/sin cast to the activation dtype.
/// <c>inv_freq</c> stays float32 on dtype moves, as in HF models loaded in half precision.
/// </summary>
internal sealed class RotaryEmbedding : nn.Module<Tensor, ScalarType, RotaryAngles>
{
    Tensor inv_freq;

    public RotaryEmbedding(int headDim, double theta, RopeScaling? scaling, Device device) : base(nameof(RotaryEmbedding))
    {
        using (NewDisposeScope())
        {
            using var dim = headDim.ToScalar();
            var exponents = arange(0, headDim, 2, dtype: ScalarType.Int64).to(ScalarType.Float32).div(dim);
            var invFreq = pow(tensor((float)theta), exponents).reciprocal(); // [d/2], float32 as in HF: 1 / θ^(2i/d)
            if (scaling is not null) invFreq = Llama3Scaled(invFreq, scaling);
            inv_freq = invFreq.to(device).DetachFromDisposeScope();
        }
        register_buffer(nameof(inv_freq), inv_freq, persistent: false);
        RegisterComponents();
    }

    /// <summary>positions [B, T] → cos and a sign-folded sin, each [B, T, 1, d] in <paramref name="dtype"/>.</summary>
    public override RotaryAngles forward(Tensor positions, ScalarType dtype)
    {
        using var scope = NewDisposeScope();
        var freqs = positions.to(ScalarType.Float32).unsqueeze(-1) * inv_freq; // [B, T, d/2]
        var cos = freqs.cos();
        var sin = freqs.sin();
        // rotate_half(x)·sin = cat(-x₂, x₁)·cat(s, s) = roll(x, d/2)·cat(-s, s): the same products, but one roll per
        // layer instead of two slices, a negation and a concatenation.
        var cosFull = cat([cos, cos], -1).to(dtype).unsqueeze(2);              // [B, T, 1, d]
        var sinSigned = cat([sin.neg(), sin], -1).to(dtype).unsqueeze(2);      // [B, T, 1, d]
        return new RotaryAngles(cosFull.MoveToOuterDisposeScope(), sinSigned.MoveToOuterDisposeScope());
    }

    /// <summary>HF <c>_compute_llama3_parameters</c>.</summary>
    static Tensor Llama3Scaled(Tensor invFreq, RopeScaling s)
    {
        using var lowFreqWavelen = (s.OriginalMaxPositionEmbeddings / s.LowFreqFactor).ToScalar();
        using var highFreqWavelen = (s.OriginalMaxPositionEmbeddings / s.HighFreqFactor).ToScalar();
        using var twoPi = (2 * Math.PI).ToScalar();
        using var factor = s.Factor.ToScalar();
        using var originalMax = s.OriginalMaxPositionEmbeddings.ToScalar();
        using var lowFreqFactor = s.LowFreqFactor.ToScalar();
        using var factorRange = (s.HighFreqFactor - s.LowFreqFactor).ToScalar();
        // x / t for a number x is t.reciprocal()·x, and 1 − t is −t + 1, as TorchSharp's operators compute them.
        var wavelen = invFreq.reciprocal().mul(twoPi);                                          // 2π / inv_freq
        var scaled = where(wavelen.gt(lowFreqWavelen), invFreq.div(factor), invFreq);
        var smooth = wavelen.reciprocal().mul(originalMax).sub(lowFreqFactor).div(factorRange);
        var smoothed = smooth.neg().add(Scalars.One, Scalars.One).mul(scaled).div(factor)      // (1 − smooth)·scaled / factor
            .Plus(smooth * scaled);                                                             // + smooth·scaled
        var isMedium = wavelen.ge(highFreqWavelen).logical_and(wavelen.le(lowFreqWavelen));
        return where(isMedium, smoothed, scaled);
    }

    internal Tensor InverseFrequencies => inv_freq;

    // inv_freq stays float32 on dtype moves. Device moves are done here because TorchSharp's Module.to skips
    // non-persistent buffers (named_buffers(recurse: false) drops them), which would leave inv_freq behind.
    protected override void _toEpilog(ScalarType? dtype, Device? device, bool non_blocking)
    {
        if (device is null || TensorHelpers.SameDevice(inv_freq.device, device)) return;
        var moved = inv_freq.to(ScalarType.Float32, device, non_blocking: non_blocking).DetachFromDisposeScope();
        inv_freq.Dispose();
        inv_freq = moved;
        ConditionallyRegisterBuffer(nameof(inv_freq), inv_freq, persistent: false);
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing) inv_freq.Dispose(); // Module.Dispose skips non-persistent buffers too
        base.Dispose(disposing);
    }
}

/// <summary>Per-forward rotary tables shared by every layer (owned by the forward's dispose scope): <c>x' = x·Cos + roll(x, d/2)·SinSigned</c>.</summary>
internal sealed record RotaryAngles(Tensor Cos, Tensor SinSigned)
{
    /// <summary>
    /// Rotates x [B, T, heads, d] in place (x is a projection's fresh output; the temporary belongs to the caller's
    /// scope). The products and the sum are HF's, each rounded to x's dtype as there.
    /// </summary>
    public void ApplyInPlace(Tensor x)
    {
        var rolled = x.roll(x.size(-1) / 2, -1).mul_(SinSigned);
        x.mul_(Cos).PlusInPlace(rolled);
    }
}
