using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace MiniGemini.Llm;

/// <summary>Construction helpers: parameters are allocated uninitialised, since a checkpoint (or an explicit random
/// initialisation) fills them; this keeps a 7B model from being randomly initialised only to be overwritten.</summary>
internal static class Layers
{
    public static Linear Linear(long inFeatures, long outFeatures, bool bias, Device device, ScalarType dtype) =>
        nn.Linear(
            new Parameter(empty(outFeatures, inFeatures, dtype: dtype, device: device), requires_grad: false),
            bias ? new Parameter(zeros(outFeatures, dtype: dtype, device: device), requires_grad: false) : null);

    /// <summary>x in <paramref name="dtype"/>: x itself when it already is (a same-dtype <c>to</c> still costs an op and a handle).</summary>
    public static Tensor Cast(Tensor x, ScalarType dtype) => x.dtype == dtype ? x : x.to(dtype);

    /// <summary>Device equality that treats "cuda" and "cuda:0" alike.</summary>
    public static bool SameDevice(Device a, Device b) =>
        a.type == b.type && (a.type != DeviceType.CUDA || Math.Max(a.index, 0) == Math.Max(b.index, 0));
}
