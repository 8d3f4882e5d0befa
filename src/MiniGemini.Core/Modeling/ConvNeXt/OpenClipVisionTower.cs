using TorchSharp;
using static TorchSharp.torch;

namespace MiniGemini.Modeling;

/// <summary>
/// MGM's <c>OpenCLIPVisionTower</c>: it keeps the open_clip ConvNeXt trunk's stem and stages as <c>vision_stem</c> and
/// <c>vision_stages</c>, so the checkpoint holds them under those names. The encoder itself is not a child: its
/// <c>stem</c>/<c>stages</c> names would add a second path to the same weights.
/// </summary>
internal sealed class OpenClipVisionTower : nn.Module
{
    public OpenClipVisionTower(ConvNeXtEncoder encoder) : base("OpenCLIPVisionTower")
    {
        // Registration by field scan is done first, while there is nothing to find: the parts are registered by name.
        RegisterComponents();
        Encoder = encoder;
        register_module("vision_stem", encoder.Stem);
        register_module("vision_stages", encoder.Stages);
    }

    public ConvNeXtEncoder Encoder { get; }

    /// <inheritdoc/>
    public override void train(bool on = true)
    {
        base.train(on);
        Encoder.train(on);
    }
}
