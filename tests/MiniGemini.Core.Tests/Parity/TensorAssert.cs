using TorchSharp;
using Xunit.Sdk;
using static TorchSharp.torch;

namespace MiniGemini.Tests.Parity;

/// <summary>Tensor comparison with the fixtures' tolerance: max |ours − ref| ≤ rel · max(1, max|ref|).</summary>
public static class TensorAssert
{
    /// <summary>The fixtures README tolerance for float32 parity.</summary>
    public const double Fp32Relative = 1e-4;

    /// <summary>Fails with the max abs error, where it occurs, both values and the tolerance.</summary>
    public static double Close(Tensor expected, Tensor actual, string name, double relative = Fp32Relative)
    {
        var (error, tolerance, detail) = Measure(expected, actual, name, relative);
        if (!(error <= tolerance))
            throw new XunitException($"{name}: max |Δ| = {error:E3} > tolerance {tolerance:E3}{detail}");
        return error;
    }

    /// <summary>Same as <see cref="Close"/> but returns the numbers instead of failing.</summary>
    public static (double MaxAbs, double Tolerance, string Detail) Measure(Tensor expected, Tensor actual, string name, double relative = Fp32Relative)
    {
        using var scope = NewDisposeScope();
        if (!expected.shape.SequenceEqual(actual.shape))
            throw new XunitException($"{name}: shape [{string.Join(", ", actual.shape)}] differs from the reference [{string.Join(", ", expected.shape)}]");
        var e = expected.to(ScalarType.Float64, CPU);
        var a = actual.to(ScalarType.Float64, CPU);
        double scale = Math.Max(1.0, e.numel() == 0 ? 0 : e.abs().max().item<double>());
        double tolerance = relative * scale;
        if (e.numel() == 0) return (0, tolerance, "");
        var diff = (a - e).abs().nan_to_num(nan: double.PositiveInfinity);
        long flat = diff.flatten().argmax().item<long>();
        double error = diff.flatten()[flat].item<double>();
        var index = Unravel(flat, expected.shape);
        var at = "[" + string.Join(", ", index) + "]";
        var detail = $" at {at} (ours {a.flatten()[flat].item<double>():G9}, ref {e.flatten()[flat].item<double>():G9}; max|ref| {scale:G6})";
        return (error, tolerance, detail);
    }

    /// <summary>Integer tensors (token ids) must be identical.</summary>
    public static void Equal(Tensor expected, Tensor actual, string name)
    {
        var e = expected.to(ScalarType.Int64, CPU).data<long>().ToArray();
        var a = actual.to(ScalarType.Int64, CPU).data<long>().ToArray();
        if (!expected.shape.SequenceEqual(actual.shape) || !e.SequenceEqual(a))
            throw new XunitException($"{name}: expected [{string.Join(", ", e)}] (shape [{string.Join(", ", expected.shape)}]) but got [{string.Join(", ", a)}] (shape [{string.Join(", ", actual.shape)}])");
    }

    static long[] Unravel(long flat, long[] shape)
    {
        var index = new long[shape.Length];
        for (int d = shape.Length - 1; d >= 0; d--)
        {
            index[d] = flat % shape[d];
            flat /= shape[d];
        }
        return index;
    }
}
