using TorchSharp;
using static TorchSharp.torch;

namespace MiniGemini;

/// <summary>Small tensor facts every stage needs: casts without a no-op op, device equality, shapes for messages.</summary>
internal static class TensorHelpers
{
    /// <summary>x in <paramref name="dtype"/>: x itself when it already is (a same-dtype <c>to</c> still costs an op and a handle).</summary>
    public static Tensor Cast(Tensor x, ScalarType dtype) => x.dtype == dtype ? x : x.to(dtype);

    /// <summary>x in float32 when it is of a narrower floating type; float32 and float64 stay as they are.</summary>
    public static Tensor AtLeastFloat32(Tensor x) => x.dtype is ScalarType.Float32 or ScalarType.Float64 ? x : x.to(ScalarType.Float32);

    /// <summary>x·y, into x when no autograd graph is being recorded (inference), as a new tensor when one is (training).</summary>
    public static Tensor MulInto(Tensor x, Tensor y) => is_grad_enabled() ? x.mul(y) : x.mul_(y);

    /// <summary>x + y, into x when no autograd graph is being recorded (inference), as a new tensor when one is (training).</summary>
    public static Tensor AddInto(Tensor x, Tensor y) => is_grad_enabled() ? x.Plus(y) : x.PlusInPlace(y);

    /// <summary>Device equality that treats "cuda" and "cuda:0" alike.</summary>
    public static bool SameDevice(Device a, Device b) =>
        a.type == b.type && (a.type != DeviceType.CUDA || Math.Max(a.index, 0) == Math.Max(b.index, 0));

    /// <summary>A shape as messages write it: <c>[2, 3, 4]</c>.</summary>
    public static string Shape(long[] shape) => "[" + string.Join(", ", shape) + "]";
}
