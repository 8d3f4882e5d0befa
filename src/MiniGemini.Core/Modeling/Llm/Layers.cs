using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace MiniGemini.Modeling;

/// <summary>Construction helpers: parameters are allocated uninitialised, since a checkpoint (or an explicit random
/// initialisation) fills them; this keeps a 7B model from being randomly initialised only to be overwritten.</summary>
internal static class Layers
{
    public static Linear Linear(long inFeatures, long outFeatures, bool bias, Device device, ScalarType dtype) =>
        nn.Linear(
            new Parameter(empty(outFeatures, inFeatures, dtype: dtype, device: device), requires_grad: false),
            bias ? new Parameter(zeros(outFeatures, dtype: dtype, device: device), requires_grad: false) : null);
}
