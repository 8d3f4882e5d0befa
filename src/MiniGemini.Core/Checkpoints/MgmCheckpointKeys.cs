namespace MiniGemini.Checkpoints;

/// <summary>
/// Where an MGM checkpoint keeps the parts that come from other files when a model is composed: the key prefixes of
/// <see cref="Modeling.MiniGeminiForCausalLM"/>'s vision children (its module names make them; a test holds them equal).
/// </summary>
internal static class MgmCheckpointKeys
{
    /// <summary>MGM's CLIP tower wrapper.</summary>
    public const string VisionTower = "model.vision_tower.";

    /// <summary>MGM's ConvNeXt tower wrapper.</summary>
    public const string AuxVisionTower = "model.vision_tower_aux.";

    /// <summary>A learned separator some LLaVA-style checkpoints store and MGM does not use.</summary>
    public const string ImageNewline = "model.image_newline";

    /// <summary>HF's CLIPVisionTransformer inside CLIPVisionModel inside MGM's tower wrapper.</summary>
    public const string ClipTower = "model.vision_tower.vision_tower.vision_model.";

    /// <summary>The open_clip trunk's <c>stem</c>, kept as <c>vision_stem</c> by MGM's OpenCLIPVisionTower.</summary>
    public const string AuxStem = "model.vision_tower_aux.vision_stem.";

    /// <summary>The open_clip trunk's <c>stages</c>, kept as <c>vision_stages</c>.</summary>
    public const string AuxStages = "model.vision_tower_aux.vision_stages.";

    /// <summary>Patch info mining's three projectors (<c>vlm_uni_query_projector</c>, …).</summary>
    public const string Mining = "model.vlm_uni_";

    /// <summary>The projector.</summary>
    public const string Projector = "model.mm_projector.";

    /// <summary>Every vision prefix: an LLM loaded alone from an MGM checkpoint skips these keys.</summary>
    public static readonly string[] Vision = [VisionTower, AuxVisionTower, Mining, Projector, ImageNewline];
}
