using TorchSharp.Modules;
using static TorchSharp.torch;

namespace MiniGemini.Modeling;

/// <summary>Convolutions for the ConvNeXt that leave no stray tensor behind.</summary>
internal static class Conv
{
    /// <summary>
    /// <c>nn.Conv2d</c> with a bias. TorchSharp's bias initialisation leaves one temporary tensor to the finalizer; it
    /// is built in a dispose scope that frees what the module does not keep, so building and disposing a model
    /// leaves no live tensor.
    /// </summary>
    public static Conv2d Conv2d(long inChannels, long outChannels, long kernel, long stride = 1, long padding = 0, long groups = 1)
    {
        using var scope = NewDisposeScope();
        var conv = nn.Conv2d(inChannels, outChannels, kernel, stride: stride, padding: padding, groups: groups);
        foreach (var parameter in conv.parameters()) parameter.DetachFromDisposeScope();
        return conv;
    }
}
