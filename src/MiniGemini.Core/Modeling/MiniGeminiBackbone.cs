using TorchSharp;
using static TorchSharp.torch;

namespace MiniGemini.Modeling;

/// <summary>
/// MGM's <c>MGMLlamaModel</c>, the checkpoint's <c>model.</c> sub-tree: the decoder (<c>embed_tokens</c>, <c>layers</c>,
/// <c>norm</c>) and beside it the vision parts, each under its checkpoint name: <c>vision_tower</c> (CLIP),
/// <c>vision_tower_aux</c> (ConvNeXt), <c>vlm_uni_{query,aux,val}_projector</c> (patch info mining) and
/// <c>mm_projector</c>. An LR-only model has neither the aux tower nor mining.
/// </summary>
internal sealed class MiniGeminiBackbone : DecoderStack
{
    public MiniGeminiBackbone(LlmArchitecture arch, Device device, ScalarType dtype, ClipVisionTransformer clip, ConvNeXtEncoder? convNeXt,
        PatchInfoMining? mining, VisionProjector projector) : base(arch, device, dtype)
    {
        Clip = clip;
        ConvNeXt = convNeXt;
        Mining = mining;
        Projector = projector;
        // Registered one by one: the decoder's constructor registered its own fields already.
        register_module("vision_tower", new ClipVisionTower(clip));
        if (convNeXt is not null) register_module("vision_tower_aux", new OpenClipVisionTower(convNeXt));
        if (mining is not null)
        {
            register_module("vlm_uni_query_projector", mining.Query);
            register_module("vlm_uni_aux_projector", mining.Key);
            register_module("vlm_uni_val_projector", mining.Value);
        }
        register_module("mm_projector", projector.Layers);
    }

    public ClipVisionTransformer Clip { get; }
    public ConvNeXtEncoder? ConvNeXt { get; }
    public PatchInfoMining? Mining { get; }
    public VisionProjector Projector { get; }

    /// <inheritdoc/>
    public override void train(bool on = true)
    {
        base.train(on);
        // Mining and the projector read their own mode (autograd path or not); their layers are children here, they are not.
        Mining?.train(on);
        Projector.train(on);
        ConvNeXt?.train(on);
    }

    protected override void Dispose(bool disposing)
    {
        base.Dispose(disposing);
        if (!disposing) return;
        Mining?.Dispose();
        Projector.Dispose();
        ConvNeXt?.Dispose();
    }
}
