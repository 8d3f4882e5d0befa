using TorchSharp.Modules;
using static TorchSharp.torch;

namespace MiniGemini.Checkpoints;

/// <summary>
/// Linear layers for modules that a checkpoint is about to fill: built inside <see cref="ForLoading"/> they are left
/// uninitialised, since drawing the random initialisation of a CLIP-L or ConvNeXt-L only to overwrite it took most of
/// their load time, and are made in the precision the model will run in, so that a float32 tower read into a bfloat16
/// model is converted on the way in instead of held in float32 first. Outside it (a model built from scratch) they are
/// <c>nn.Linear</c>'s, initialised as always.
/// </summary>
internal static class LoadingLayers
{
    static readonly AsyncLocal<ScalarType?> Loading = new();

    /// <summary>
    /// Until disposed, <see cref="Linear"/> on this flow builds uninitialised layers in <paramref name="dtype"/> (by
    /// default the dtype of an enclosing <see cref="ForLoading"/>, else float32).
    /// </summary>
    public static IDisposable ForLoading(ScalarType? dtype = null)
    {
        var previous = Loading.Value;
        Loading.Value = dtype ?? previous ?? ScalarType.Float32;
        return new Restore(previous);
    }

    /// <summary><c>nn.Linear(inFeatures, outFeatures, hasBias)</c>, uninitialised inside <see cref="ForLoading"/>.</summary>
    public static Linear Linear(long inFeatures, long outFeatures, bool hasBias = true) =>
        Loading.Value is { } dtype
            ? nn.Linear(new Parameter(empty(outFeatures, inFeatures, dtype)), hasBias ? new Parameter(empty(outFeatures, dtype)) : null)
            : nn.Linear(inFeatures, outFeatures, hasBias);

    sealed class Restore(ScalarType? previous) : IDisposable
    {
        public void Dispose() => Loading.Value = previous;
    }
}
