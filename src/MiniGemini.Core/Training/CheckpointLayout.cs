using MiniGemini.Modeling;
using MiniGemini.Pipeline;
using MiniGemini.Vision;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace MiniGemini.Training;

/// <summary>
/// Every parameter of a model under its key in an MGM checkpoint: the LLM at the root (<c>model.embed_tokens</c>,
/// <c>model.layers</c>, <c>model.norm</c>, <c>lm_head</c>), the towers, mining and projector under <c>model.</c>. The
/// inverse of loading, so a saved model loads unchanged.
/// </summary>
internal static class CheckpointLayout
{
    public static IEnumerable<(string Key, Parameter Parameter)> Parameters(VisionStack vision, ILlmAdapter llm)
    {
        foreach (var (name, p) in vision.Clip.named_parameters()) yield return (ViTEncoder.MgmPrefix + name, p);
        if (vision.ConvNeXt is { } convNeXt)
        {
            // timm's stem./stages. are vision_stem./vision_stages. in MGM checkpoints.
            foreach (var (name, p) in convNeXt.Stem.named_parameters()) yield return (ConvNeXtEncoder.MgmPrefix + "vision_stem." + name, p);
            foreach (var (name, p) in convNeXt.Stages.named_parameters()) yield return (ConvNeXtEncoder.MgmPrefix + "vision_stages." + name, p);
        }
        if (vision.Mining is { } mining)
            foreach (var (name, p) in mining.named_parameters()) yield return ("model." + name, p);
        foreach (var (name, p) in vision.Projector.named_parameters()) yield return ("model." + name, p);
        foreach (var (name, p) in ((nn.Module)llm).named_parameters()) yield return (name, p);
    }

    public static IEnumerable<(string Key, Parameter Parameter)> Parameters(MiniGeminiModel model) => Parameters(model.Vision, model.Llm);
}
