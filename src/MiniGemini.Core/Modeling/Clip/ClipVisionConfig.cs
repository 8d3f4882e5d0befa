using MiniGemini.Checkpoints;
namespace MiniGemini.Modeling;

/// <summary>
/// HF <c>CLIPVisionConfig</c>, read from a flat vision config or from the <c>vision_config</c> section of a full
/// <c>CLIPConfig</c> (as in <c>openai/clip-vit-large-patch14-336</c>). Absent fields take transformers' defaults.
/// </summary>
public sealed record ClipVisionConfig
{
    /// <summary>Width of the transformer (1024 for ViT-L).</summary>
    public int HiddenSize { get; init; } = 768;
    /// <summary>MLP width (4096 for ViT-L).</summary>
    public int IntermediateSize { get; init; } = 3072;
    /// <summary>Number of encoder layers (24 for ViT-L).</summary>
    public int NumHiddenLayers { get; init; } = 12;
    /// <summary>Attention heads (16 for ViT-L).</summary>
    public int NumAttentionHeads { get; init; } = 12;
    /// <summary>Input side in pixels (336 for the MGM tower).</summary>
    public int ImageSize { get; init; } = 224;
    /// <summary>Patch side in pixels (14 for ViT-L/14).</summary>
    public int PatchSize { get; init; } = 32;
    /// <summary>Input channels.</summary>
    public int NumChannels { get; init; } = 3;
    /// <summary>LayerNorm epsilon.</summary>
    public double LayerNormEps { get; init; } = 1e-5;
    /// <summary>MLP activation: <c>quick_gelu</c> for OpenAI CLIP.</summary>
    public string HiddenAct { get; init; } = "quick_gelu";

    /// <summary>Patches per side.</summary>
    public int PatchesPerSide => ImageSize / PatchSize;

    /// <summary>Per-head width.</summary>
    public int HeadDim => HiddenSize / NumAttentionHeads;

    /// <summary>Reads config.json (flat or with <c>vision_config</c>).</summary>
    /// <exception cref="ModelLoadException">The file is malformed or describes another model.</exception>
    public static ClipVisionConfig Load(string path) => From(ConfigJson.Load(path));

    /// <summary>Parses config.json text.</summary>
    public static ClipVisionConfig Parse(string json, string source = "<json>") => From(ConfigJson.Parse(json, source));

    internal static ClipVisionConfig From(ConfigJson json)
    {
        var modelType = json.OptionalString("model_type");
        var vision = json.Section("vision_config");
        if (vision is null && modelType is not (null or "clip_vision_model"))
            throw ModelLoadException.Config($"{json.File}: model_type '{modelType}' is not a CLIP vision model and there is no vision_config section.", json.File, "model_type");
        var c = vision ?? json;
        var config = new ClipVisionConfig
        {
            HiddenSize = c.OptionalInt("hidden_size") ?? 768,
            IntermediateSize = c.OptionalInt("intermediate_size") ?? 3072,
            NumHiddenLayers = c.OptionalInt("num_hidden_layers") ?? 12,
            NumAttentionHeads = c.OptionalInt("num_attention_heads") ?? 12,
            ImageSize = c.OptionalInt("image_size") ?? 224,
            PatchSize = c.OptionalInt("patch_size") ?? 32,
            NumChannels = c.OptionalInt("num_channels") ?? 3,
            LayerNormEps = c.OptionalDouble("layer_norm_eps") ?? 1e-5,
            HiddenAct = c.OptionalString("hidden_act") ?? "quick_gelu",
        };
        if (config.HiddenSize % config.NumAttentionHeads != 0)
            throw ModelLoadException.Config($"{json.File}: hidden_size {config.HiddenSize} is not divisible by num_attention_heads {config.NumAttentionHeads}.", json.File, "num_attention_heads");
        if (config.ImageSize % config.PatchSize != 0)
            throw ModelLoadException.Config($"{json.File}: image_size {config.ImageSize} is not a multiple of patch_size {config.PatchSize}.", json.File, "patch_size");
        if (config.HiddenAct is not ("quick_gelu" or "gelu"))
            throw ModelLoadException.Config($"{json.File}: hidden_act '{config.HiddenAct}' is not supported (quick_gelu or gelu).", json.File, "hidden_act");
        return config;
    }
}
