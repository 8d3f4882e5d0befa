using MiniGemini.Checkpoints;

namespace MiniGemini.Modeling;

/// <summary>
/// A timm ConvNeXt trunk as open_clip builds it for MGM: 4×4 patchify stem, stages of depthwise-7×7 blocks with
/// layer scale, exact GELU, biases everywhere, no head. Only depths, widths and the LayerNorm epsilon vary.
/// </summary>
public sealed record ConvNeXtConfig
{
    /// <summary>Blocks per stage.</summary>
    public required IReadOnlyList<int> Depths { get; init; }

    /// <summary>Channels per stage.</summary>
    public required IReadOnlyList<int> Dims { get; init; }

    /// <summary>Epsilon of every LayerNorm (timm's default 1e-6; convnext_xxlarge uses 1e-5).</summary>
    public double NormEps { get; init; } = 1e-6;

    /// <summary>Input channels.</summary>
    public int InChannels { get; init; } = 3;

    /// <summary>Channels of the fused map: the sum of <see cref="Dims"/> (2880 for convnext_large_d_320).</summary>
    public int FusedChannels => Dims.Sum();

    /// <summary>open_clip <c>convnext_large_d_320</c> (timm <c>convnext_large</c>): every released MGM model.</summary>
    public static ConvNeXtConfig LargeD320 { get; } = new() { Depths = [3, 3, 27, 3], Dims = [192, 384, 768, 1536] };

    /// <summary>open_clip <c>convnext_base_w_320</c> (timm <c>convnext_base</c>).</summary>
    public static ConvNeXtConfig BaseW320 { get; } = new() { Depths = [3, 3, 27, 3], Dims = [128, 256, 512, 1024] };

    /// <summary>open_clip <c>convnext_xxlarge</c>: timm's <c>norm_eps</c> default is 1e-5 for this one.</summary>
    public static ConvNeXtConfig XXLarge { get; } = new() { Depths = [3, 4, 30, 3], Dims = [384, 768, 1536, 3072], NormEps = 1e-5 };

    static readonly (string Token, ConvNeXtConfig Config)[] Presets = [("xxlarge", XXLarge), ("large", LargeD320), ("base", BaseW320)];

    /// <summary>
    /// The preset named by an open_clip model name, a timm trunk name, or an MGM tower path, by MGM's own rule
    /// (<c>openclip_encoder.py</c>: "large" → large_d_320, "base" → base_w_320, "xxlarge"), matched as a whole word so
    /// that e.g. "xlarge" is not taken for "large". Null when the name names none of them.
    /// </summary>
    public static ConvNeXtConfig? FromName(string name)
    {
        var words = Path.GetFileName(name.TrimEnd('/', '\\')).ToLowerInvariant().Split('-', '_', '.', ' ');
        return Presets.FirstOrDefault(p => words.Contains(p.Token)).Config;
    }

    /// <summary>
    /// From open_clip_config.json: explicit <c>depths</c>/<c>dims</c> when present, else the preset of
    /// <c>timm_model_name</c>; null when the file says neither (then infer from the checkpoint).
    /// </summary>
    internal static ConvNeXtConfig? FromOpenClip(OpenClipConfig config)
    {
        var named = config.TimmModelName is null ? null : FromName(config.TimmModelName);
        if (config.Depths is null || config.Dims is null) return named;
        return new ConvNeXtConfig { Depths = config.Depths, Dims = config.Dims, NormEps = named?.NormEps ?? 1e-6 };
    }

    /// <summary>
    /// Reads depths and widths from the keys and shapes under the stem and stage prefixes. The epsilon is not in
    /// the weights: it is the preset's when the shapes are a preset's (so convnext_xxlarge gets 1e-5), else timm's 1e-6.
    /// </summary>
    /// <exception cref="ModelLoadException">No stages, a gap in the stage numbering, or a block without its depthwise conv.</exception>
    internal static ConvNeXtConfig Infer(ITensorSource source, string stemPrefix, string stagesPrefix)
    {
        var blocks = new SortedDictionary<int, int>(); // stage -> highest block index + 1
        foreach (var key in source.Keys.Where(k => k.StartsWith(stagesPrefix, StringComparison.Ordinal)))
        {
            var parts = key[stagesPrefix.Length..].Split('.'); // {i}.blocks.{j}.…
            if (parts.Length > 3 && parts[1] == "blocks" && int.TryParse(parts[0], out var stage) && int.TryParse(parts[2], out var block))
                blocks[stage] = Math.Max(blocks.GetValueOrDefault(stage), block + 1);
        }
        if (blocks.Count == 0 || blocks.Keys.Last() != blocks.Count - 1)
            throw new ModelLoadException($"{source.Location}: cannot infer the ConvNeXt stages: expected '{stagesPrefix}0.blocks.0.*' … with stages numbered from 0 (found stages [{string.Join(", ", blocks.Keys)}]).", source.Location, stagesPrefix + "0.blocks.0.conv_dw.weight");

        long[] Shape(string key) => source.TryGetInfo(key, out var info) && info.Shape.Length == 4 ? info.Shape
            : throw new ModelLoadException($"{source.Location}: cannot infer the ConvNeXt widths: '{key}' is missing or not a 4-D conv weight.", source.Location, key);

        var dims = blocks.Keys.Select(i => (int)Shape($"{stagesPrefix}{i}.blocks.0.conv_dw.weight")[0]).ToArray();
        var depths = blocks.Values.ToArray();
        var preset = Presets.Select(p => p.Config).FirstOrDefault(p => p.Depths.SequenceEqual(depths) && p.Dims.SequenceEqual(dims));
        return new ConvNeXtConfig
        {
            Depths = depths, Dims = dims, NormEps = preset?.NormEps ?? 1e-6,
            InChannels = (int)Shape(stemPrefix + "0.weight")[1],
        };
    }
}
