using TorchSharp;
using static TorchSharp.torch;

namespace MiniGemini;

/// <summary>
/// Scalars that stay alive through the libtorch calls they are passed to. A number converted implicitly to a
/// <see cref="Scalar"/> at a call site (<c>x * 0.5</c>, <c>x.add_(eps)</c>, <c>x.ne(0)</c>), and the alpha of 1 that
/// TorchSharp's <c>a + b</c>, <c>add(Tensor)</c> and <c>add(Scalar)</c> create, is a temporary that nothing references
/// once its handle has been read: a garbage collection during the native call can run its finalizer, which frees the
/// native scalar while libtorch still reads it (an error from Scalar.h, or a wrong value). So every Scalar handed to
/// TorchSharp is one of the rooted constants here, or a run-time value made with <c>using var s = value.ToScalar()</c>,
/// which keeps it reachable until the end of its scope. (<c>torch.arange</c> and <c>torch.full</c> read their scalars
/// again after the native call, which keeps them alive; they take plain numbers.)
/// </summary>
internal static class Scalars
{
    /// <summary>1 (int64), also the alpha of an addition.</summary>
    public static readonly Scalar One = 1.ToScalar();

    /// <summary>0 (int64).</summary>
    public static readonly Scalar Zero = 0.ToScalar();

    /// <summary>2 (int64), the exponent of <c>square()</c>, which is <c>pow(2)</c>.</summary>
    public static readonly Scalar Two = 2.ToScalar();

    /// <summary>1.0 (float64).</summary>
    public static readonly Scalar OneDouble = 1.0.ToScalar();

    /// <summary>−∞ (float64).</summary>
    public static readonly Scalar NegativeInfinity = double.NegativeInfinity.ToScalar();

    /// <summary>true (bool).</summary>
    public static readonly Scalar True = true.ToScalar();

    /// <summary>false (bool).</summary>
    public static readonly Scalar False = false.ToScalar();

    /// <summary>a + b (what <c>a + b</c> and <c>a.add(b)</c> compute, with an alpha that outlives the call).</summary>
    public static Tensor Plus(this Tensor a, Tensor b) => a.add(b, One);

    /// <summary>a += b in place (what <c>a.add_(b)</c> computes, with an alpha that outlives the call).</summary>
    public static Tensor PlusInPlace(this Tensor a, Tensor b) => a.add_(b, One);
}
