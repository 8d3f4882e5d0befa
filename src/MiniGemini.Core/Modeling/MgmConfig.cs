using MiniGemini.Checkpoints;
namespace MiniGemini.Modeling;

/// <summary>
/// A Mini-Gemini checkpoint's config.json: the LLM fields plus MGM's <c>mm_*</c>/image fields. Defaults follow the
/// released checkpoints (select layer −2, patch features, mlp2x_gelu, pad aspect ratio).
/// </summary>
public sealed record MgmConfig
{
    /// <summary>The language model.</summary>
    public required LlmConfig Llm { get; init; }
    /// <summary>CLIP tower path as written in the config (often <c>model_zoo/OpenAI/clip-vit-large-patch14-336</c>).</summary>
    public string? VisionTower { get; init; }
    /// <summary>ConvNeXt tower path as written in the config.</summary>
    public string? VisionTowerAux { get; init; }
    /// <summary>CLIP feature width D (1024).</summary>
    public required int MmHiddenSize { get; init; }
    /// <summary>Fused ConvNeXt width Da (2880 for convnext_large).</summary>
    public int? MmHiddenSizeAux { get; init; }
    /// <summary>Projector type: <c>linear</c>, <c>mlp{N}x_gelu</c> or <c>identity</c>.</summary>
    public string ProjectorType { get; init; } = "mlp2x_gelu";
    /// <summary>CLIP hidden state to use (−2: the penultimate layer).</summary>
    public int VisionSelectLayer { get; init; } = -2;
    /// <summary><c>patch</c> (drop CLS) or <c>cls_patch</c>.</summary>
    public string VisionSelectFeature { get; init; } = "patch";
    /// <summary>HR input side for the ConvNeXt (768 normal, 1536 HD).</summary>
    public int? ImageSizeAux { get; init; }
    /// <summary>LR crops per side (1 normal, 2 HD).</summary>
    public int ImageGrid { get; init; } = 1;
    /// <summary>Whether HD models add a global view.</summary>
    public bool ImageGlobal { get; init; }
    /// <summary>Aspect handling; released models use <c>pad</c>.</summary>
    public string ImageAspectRatio { get; init; } = "pad";
    /// <summary>Maximum sequence length the model was trained with.</summary>
    public int? TokenizerModelMaxLength { get; init; }
    /// <summary>Whether image tokens are wrapped in start/end tokens (false in every release).</summary>
    public bool UseImageStartEnd { get; init; }

    /// <summary>Reads an MGM config.json.</summary>
    /// <exception cref="ModelLoadException">Malformed, or a required LLM or <c>mm_*</c> field is missing.</exception>
    public static MgmConfig Load(string path) => From(ConfigJson.Load(path));

    /// <summary>Parses MGM config.json text.</summary>
    public static MgmConfig Parse(string json, string source = "<json>") => From(ConfigJson.Parse(json, source));

    /// <summary>The largest <c>image_size_aux</c> accepted (MGM-HD uses 1536); beyond it the pixel tensors alone would not fit a GPU.</summary>
    public const int MaxImageSide = 8192;

    /// <summary>The largest <c>image_grid</c> accepted (MGM-HD uses 2).</summary>
    public const int MaxImageGrid = 8;

    internal static MgmConfig From(ConfigJson json)
    {
        var config = new MgmConfig
        {
            Llm = LlmConfig.From(json),
            VisionTower = json.OptionalString("mm_vision_tower", "vision_tower"),
            VisionTowerAux = json.OptionalString("mm_vision_tower_aux", "vision_tower_aux"),
            MmHiddenSize = json.Int("mm_hidden_size"),
            MmHiddenSizeAux = json.OptionalInt("mm_hidden_size_aux"),
            ProjectorType = json.OptionalString("mm_projector_type") ?? "mlp2x_gelu",
            VisionSelectLayer = json.OptionalInt("mm_vision_select_layer") ?? -2,
            VisionSelectFeature = json.OptionalString("mm_vision_select_feature") ?? "patch",
            ImageSizeAux = json.OptionalInt("image_size_aux"),
            ImageGrid = json.OptionalInt("image_grid") ?? 1,
            ImageGlobal = json.OptionalBool("image_global") ?? false,
            ImageAspectRatio = json.OptionalString("image_aspect_ratio") ?? "pad",
            TokenizerModelMaxLength = json.OptionalInt("tokenizer_model_max_length"),
            UseImageStartEnd = json.OptionalBool("mm_use_im_start_end") ?? false,
        };
        if (config.ImageGrid is < 1 or > MaxImageGrid) throw json.Invalid("image_grid", $"an integer from 1 to {MaxImageGrid}");
        if (config.ImageSizeAux is < 1 or > MaxImageSide) throw json.Invalid("image_size_aux", $"an integer from 1 to {MaxImageSide}");
        if (config.VisionSelectFeature is not ("patch" or "cls_patch"))
            throw json.Invalid("mm_vision_select_feature", "'patch' or 'cls_patch'");
        return config;
    }
}
