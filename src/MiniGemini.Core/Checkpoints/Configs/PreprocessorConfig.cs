namespace MiniGemini.Checkpoints;

/// <summary>HF <c>preprocessor_config.json</c> of a CLIP image processor: sizes, resampling and normalization.</summary>
internal sealed record PreprocessorConfig
{
    /// <summary>OpenAI CLIP mean (RGB), the default.</summary>
    public static readonly IReadOnlyList<double> ClipMean = [0.48145466, 0.4578275, 0.40821073];
    /// <summary>OpenAI CLIP std (RGB), the default.</summary>
    public static readonly IReadOnlyList<double> ClipStd = [0.26862954, 0.26130258, 0.27577711];

    /// <summary>Normalization mean (RGB).</summary>
    public IReadOnlyList<double> ImageMean { get; init; } = ClipMean;
    /// <summary>Normalization std (RGB).</summary>
    public IReadOnlyList<double> ImageStd { get; init; } = ClipStd;
    /// <summary>Shortest-edge resize target.</summary>
    public int? Size { get; init; }
    /// <summary>Center-crop side.</summary>
    public int? CropSize { get; init; }
    /// <summary>PIL resample filter id (3 = bicubic).</summary>
    public int Resample { get; init; } = 3;

    /// <summary>Reads preprocessor_config.json.</summary>
    public static PreprocessorConfig Load(string path) => From(ConfigJson.Load(path));

    internal static PreprocessorConfig From(ConfigJson json)
    {
        var mean = json.OptionalDoubles("image_mean") ?? ClipMean;
        var std = json.OptionalDoubles("image_std") ?? ClipStd;
        if (mean.Count != 3 || std.Count != 3)
            throw ModelLoadException.Config($"{json.File}: image_mean and image_std must have 3 entries.", json.File, "image_mean");
        if (std.Any(s => s <= 0))
            throw ModelLoadException.Config($"{json.File}: image_std entries must be positive.", json.File, "image_std");
        return new PreprocessorConfig
        {
            ImageMean = mean,
            ImageStd = std,
            Size = SideOf(json, "size", "shortest_edge"),
            CropSize = SideOf(json, "crop_size", "height"),
            Resample = json.OptionalInt("resample") ?? 3,
        };
    }

    // transformers-4 wrote sizes as integers, later versions as {"shortest_edge": n} or {"height": h, "width": w}.
    static int? SideOf(ConfigJson json, string key, string inner) =>
        json.Section(key) is { } section ? section.OptionalInt(inner) : json.OptionalInt(key);
}
