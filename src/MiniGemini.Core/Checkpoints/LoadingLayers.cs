using TorchSharp.Modules;
using static TorchSharp.torch;

namespace MiniGemini.Checkpoints;

/// <summary>
/// Linear layers for modules that a checkpoint is about to fill: built inside <see cref="ForLoading"/> they are left
/// uninitialised, since drawing the random initialisation of a CLIP-L or ConvNeXt-L only to overwrite it took most of
/// their load time. Outside it (a model built from scratch) they are <c>nn.Linear</c>'s, initialised as always.
/// </summary>
internal static class LoadingLayers
{
    static readonly AsyncLocal<bool> Loading = new();

    /// <summary>Until disposed, <see cref="Linear"/> on this flow builds uninitialised layers.</summary>
    public static IDisposable ForLoading()
    {
        bool previous = Loading.Value;
        Loading.Value = true;
        return new Restore(previous);
    }

    /// <summary><c>nn.Linear(inFeatures, outFeatures, hasBias)</c>, uninitialised inside <see cref="ForLoading"/>.</summary>
    public static Linear Linear(long inFeatures, long outFeatures, bool hasBias = true) =>
        Loading.Value
            ? nn.Linear(new Parameter(empty(outFeatures, inFeatures)), hasBias ? new Parameter(empty(outFeatures)) : null)
            : nn.Linear(inFeatures, outFeatures, hasBias);

    sealed class Restore(bool previous) : IDisposable
    {
        public void Dispose() => Loading.Value = previous;
    }
}
