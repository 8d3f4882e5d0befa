using TorchSharp;
using TorchSharp.Modules;
using TorchSharp.Utils;
using static TorchSharp.torch;

namespace MiniGemini.Modeling;

/// <summary>
/// timm <c>ConvNeXtStage</c>: for stages after the first, a downsample (LayerNorm2d, then a 2×2 stride-2 conv) that
/// halves the resolution and widens the channels; then the blocks. Stage 0 keeps the stem's resolution and width,
/// where timm puts an <c>Identity</c> that has no keys, so there is no downsample at all.
/// </summary>
internal sealed class ConvNeXtStage : nn.Module<Tensor, Tensor>
{
    [ComponentName(Name = "downsample")] readonly Sequential? _downsample;
    [ComponentName(Name = "blocks")] readonly Sequential _blocks;

    public ConvNeXtStage(long inChannels, long outChannels, int depth, double eps, bool downsample) : base(nameof(ConvNeXtStage))
    {
        if (downsample)
            _downsample = nn.Sequential(new LayerNorm2d(inChannels, eps), Conv.Conv2d(inChannels, outChannels, 2, stride: 2));
        _blocks = nn.Sequential(Enumerable.Range(0, depth).Select(_ => new ConvNeXtBlock(outChannels, eps)).ToArray<nn.Module<Tensor, Tensor>>());
        RegisterComponents();
    }

    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        var h = _downsample?.call(x) ?? x; // [B, C_out, H/2, W/2] (or unchanged in stage 0)
        return _blocks.call(h).MoveToOuterDisposeScope();
    }
}
