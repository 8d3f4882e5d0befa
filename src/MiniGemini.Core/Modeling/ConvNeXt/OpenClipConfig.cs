using MiniGemini.Checkpoints;
namespace MiniGemini.Modeling;

/// <summary>
/// The parts of an open_clip <c>open_clip_config.json</c> the ConvNeXt tower needs: the timm model name, the image
/// size, explicit depths/dims when the config carries them, and the preprocessing mean/std.
/// </summary>
internal sealed record OpenClipConfig
{
    /// <summary>timm model name, e.g. <c>convnext_large</c> (open_clip's convnext_large_d_320 uses it).</summary>
    public string? TimmModelName { get; init; }
    /// <summary>Training image size.</summary>
    public int? ImageSize { get; init; }
    /// <summary>Blocks per stage, when given explicitly.</summary>
    public IReadOnlyList<int>? Depths { get; init; }
    /// <summary>Channels per stage, when given explicitly.</summary>
    public IReadOnlyList<int>? Dims { get; init; }
    /// <summary>Normalization mean (RGB).</summary>
    public IReadOnlyList<double>? Mean { get; init; }
    /// <summary>Normalization std (RGB).</summary>
    public IReadOnlyList<double>? Std { get; init; }

    /// <summary>Reads open_clip_config.json.</summary>
    public static OpenClipConfig Load(string path) => From(ConfigJson.Load(path));

    internal static OpenClipConfig From(ConfigJson json)
    {
        var vision = json.Section("model_cfg")?.Section("vision_cfg")
            ?? throw ModelLoadException.Config($"{json.File}: no model_cfg.vision_cfg section.", json.File, "model_cfg");
        var preprocess = json.Section("preprocess_cfg");
        var config = new OpenClipConfig
        {
            TimmModelName = vision.OptionalString("timm_model_name"),
            ImageSize = vision.OptionalInt("image_size"),
            Depths = vision.Has("depths") ? vision.Ints("depths") : null,
            Dims = vision.Has("dims") ? vision.Ints("dims") : null,
            Mean = preprocess?.OptionalDoubles("mean"),
            Std = preprocess?.OptionalDoubles("std"),
        };
        if (config.Depths is not null && config.Dims is not null && config.Depths.Count != config.Dims.Count)
            throw ModelLoadException.Config($"{json.File}: depths has {config.Depths.Count} stages but dims has {config.Dims.Count}.", json.File, "dims");
        return config;
    }
}
