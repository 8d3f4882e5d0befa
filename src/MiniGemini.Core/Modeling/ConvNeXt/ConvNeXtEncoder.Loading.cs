using MiniGemini.Checkpoints;

namespace MiniGemini.Modeling;

public sealed partial class ConvNeXtEncoder
{
    /// <summary>open_clip keeps the timm trunk at <c>visual.trunk.</c> (children <c>stem.</c>, <c>stages.</c>).</summary>
    public const string OpenClipPrefix = "visual.trunk.";

    /// <summary>Layouts of a standalone file: open_clip, or a bare timm trunk.</summary>
    static readonly string[] FilePrefixes = [OpenClipPrefix, ""];

    const string OpenClipConfigFile = "open_clip_config.json";

    /// <summary>
    /// Builds and loads the trunk from an open_clip folder (weights, optionally <c>open_clip_config.json</c>) or from
    /// a checkpoint file (a config next to it is used). The architecture comes from the config's depths/dims, else
    /// from its timm model name, else from the checkpoint's keys and shapes.
    /// </summary>
    /// <exception cref="ModelLoadException">open_clip_config.json is malformed; no weights, no ConvNeXt in them, or keys/shapes that do not match.</exception>
    public static ConvNeXtEncoder FromPretrained(string path)
    {
        var config = ConfigBeside(Directory.Exists(path) ? path : Path.GetDirectoryName(Path.GetFullPath(path))!);
        using var source = Checkpoint.Open(path);
        return Load(source, config);
    }

    /// <summary>
    /// Builds the trunk and loads it from <paramref name="source"/>. <paramref name="prefix"/> (detected when null) is
    /// <see cref="OpenClipPrefix"/> or none (a bare timm trunk); a prefix under which the parts are named
    /// <c>vision_stem.</c>/<c>vision_stages.</c> (MGM's) is given explicitly; <paramref name="config"/> is
    /// inferred from the keys when null. In an open_clip file the classifier/projection heads and the text tower are
    /// skipped by rule; any other key that does not fit is an error.
    /// </summary>
    /// <exception cref="ModelLoadException">No ConvNeXt found, its architecture cannot be read from the keys, or missing, unexpected or mis-shaped keys.</exception>
    internal static ConvNeXtEncoder Load(ITensorSource source, ConvNeXtConfig? config = null, string? prefix = null)
    {
        var (stem, stages) = Locate(source, prefix);
        config ??= ConvNeXtConfig.Infer(source, stem, stages);
        ConvNeXtEncoder encoder;
        using (LoadingLayers.ForLoading()) encoder = new ConvNeXtEncoder(config);
        try
        {
            StateDictLoader.Load(encoder.Stem, source, stem);
            StateDictLoader.Load(encoder.Stages, source, stages);
        }
        catch
        {
            encoder.Dispose();
            throw;
        }
        encoder.eval();
        return encoder;
    }

    /// <summary>The prefix the trunk's keys have in an open_clip or timm file, or null when it holds none.</summary>
    internal static string? FindPrefix(ITensorSource source) => StateDictLoader.FindPrefix(source, "stem.0.weight", FilePrefixes);

    /// <summary>
    /// A standalone trunk file: its architecture (from <c>open_clip_config.json</c> in <paramref name="folder"/>, else
    /// from the keys) and the prefixes of its stem and stages; the file must hold nothing else but parts MGM drops.
    /// </summary>
    internal static (ConvNeXtConfig Config, string Stem, string Stages) ReadFile(ITensorSource source, string folder)
    {
        var (stem, stages) = Locate(source, prefix: null);
        return (ConfigBeside(folder) ?? ConvNeXtConfig.Infer(source, stem, stages), stem, stages);
    }

    /// <summary>The architecture <c>open_clip_config.json</c> in <paramref name="folder"/> names, or null without one.</summary>
    static ConvNeXtConfig? ConfigBeside(string folder)
    {
        var file = Path.Combine(folder, OpenClipConfigFile);
        return File.Exists(file) ? ConvNeXtConfig.FromOpenClip(OpenClipConfig.Load(file)) : null;
    }

    /// <summary>
    /// The prefixes of stem and stages under <paramref name="prefix"/> (detected when null); in an open_clip or timm
    /// file, every other key must be one that MGM drops.
    /// </summary>
    static (string Stem, string Stages) Locate(ITensorSource source, string? prefix)
    {
        prefix ??= FindPrefix(source) ?? throw new ModelLoadException(
            $"{source.Location}: no ConvNeXt trunk found (looked for 'stem.0.weight' under '{OpenClipPrefix}' and '').",
            source.Location, OpenClipPrefix + "stem.0.weight");
        var (stem, stages) = PartPrefixes(source, prefix);
        if (FilePrefixes.Contains(prefix))
            TowerCheckpoint.RequireOnlyForeignBesides(source, k => k.StartsWith(stem, StringComparison.Ordinal) || k.StartsWith(stages, StringComparison.Ordinal), IsForeignKey, "open_clip ConvNeXt");
        return (stem, stages);
    }

    /// <summary>Where stem and stages are: timm names them <c>stem</c>/<c>stages</c>, MGM <c>vision_stem</c>/<c>vision_stages</c>.</summary>
    static (string Stem, string Stages) PartPrefixes(ITensorSource source, string prefix) =>
        source.TryGetInfo(prefix + "vision_stem.0.weight", out _) ? (prefix + "vision_stem.", prefix + "vision_stages.") : (prefix + "stem.", prefix + "stages.");

    /// <summary>
    /// Keys (full, from the file root) that an open_clip ConvNeXt file holds besides the trunk and that MGM drops on
    /// purpose: timm's classifier head and <c>norm_pre</c>, open_clip's projection head, the text tower (open_clip's
    /// own or an HF text model under <c>text.</c>) and the contrastive scale/bias.
    /// </summary>
    internal static bool IsForeignKey(string key) =>
        ForeignPrefixes.Any(p => key.StartsWith(p, StringComparison.Ordinal)) || ForeignKeys.Contains(key);

    static readonly string[] ForeignPrefixes =
    [
        "visual.trunk.head.", "visual.trunk.norm_pre.", "visual.head.", "head.", "norm_pre.",
        "text.", "transformer.", "token_embedding.", "ln_final.", "text_projection",
    ];

    static readonly string[] ForeignKeys = ["positional_embedding", "logit_scale", "logit_bias", "attn_mask"];
}
