using MiniGemini.Checkpoints;

namespace MiniGemini.Modeling;

public sealed partial class ClipVisionTransformer
{
    /// <summary>Layouts of a CLIP file: transformers-5 CLIPVisionModel (no prefix), CLIPModel / transformers-4 (<c>vision_model.</c>).</summary>
    static readonly string[] FilePrefixes = ["", "vision_model."];

    const string ProbeKey = "embeddings.class_embedding";

    /// <summary>Builds and loads the tower from an HF model folder (<c>config.json</c> + weights).</summary>
    /// <exception cref="ModelLoadException">config.json is missing or not a CLIP vision config; no weights in the folder, no CLIP tower in them, or keys/shapes that do not match.</exception>
    public static ClipVisionTransformer FromPretrained(string folder)
    {
        var config = ClipVisionConfig.Load(Path.Combine(folder, "config.json"));
        using var source = Checkpoint.Open(folder);
        return Load(source, config);
    }

    /// <summary>
    /// Builds the tower for <paramref name="config"/> and loads it from <paramref name="source"/>.
    /// <paramref name="prefix"/> is detected when null: none or <c>vision_model.</c> (give another, such as an MGM
    /// checkpoint's <c>model.vision_tower.vision_tower.vision_model.</c>, explicitly).
    /// In a CLIP file, the text tower, <c>text_projection</c>, <c>visual_projection</c>, <c>logit_scale</c> and the
    /// <c>position_ids</c> buffer are skipped by rule; any other key that does not fit is an error.
    /// </summary>
    /// <exception cref="ModelLoadException">No CLIP tower found (prefix detection), or missing, unexpected or mis-shaped keys.</exception>
    internal static ClipVisionTransformer Load(ITensorSource source, ClipVisionConfig config, string? prefix = null)
    {
        prefix = Locate(source, prefix);
        ClipVisionTransformer encoder;
        using (LoadingLayers.ForLoading()) encoder = new ClipVisionTransformer(config);
        try
        {
            StateDictLoader.Load(encoder, source, prefix, new LoadOptions { IsForeign = key => IsForeignKey(prefix + key) });
        }
        catch
        {
            encoder.Dispose();
            throw;
        }
        encoder.eval();
        return encoder;
    }

    /// <summary>The prefix the CLIP tower's keys have in a CLIP file (none or <c>vision_model.</c>), or null when it holds none.</summary>
    internal static string? FindFilePrefix(ITensorSource source) => StateDictLoader.FindPrefix(source, ProbeKey, FilePrefixes);

    /// <summary>
    /// <paramref name="prefix"/>, or the CLIP file's own when null; in a CLIP file, every key outside the tower must be
    /// one that MGM drops.
    /// </summary>
    internal static string Locate(ITensorSource source, string? prefix = null)
    {
        prefix ??= FindFilePrefix(source) ?? throw NotFound(source);
        if (FilePrefixes.Contains(prefix))
            TowerCheckpoint.RequireOnlyForeignBesides(source, k => k.StartsWith(prefix, StringComparison.Ordinal), IsForeignKey, "CLIP");
        return prefix;
    }

    /// <summary>
    /// Reads the architecture from the tensor shapes under <paramref name="prefix"/> (detected when null), for
    /// checkpoints that come without a CLIP config.json, such as MGM checkpoints whose tower path does not exist locally.
    /// Shapes cannot tell the head count: it defaults to width / 64, the head width of every OpenAI CLIP ViT
    /// (ViT-L/14-336: 1024 / 64 = 16). Activation and LayerNorm epsilon are OpenAI CLIP's (quick_gelu, 1e-5).
    /// </summary>
    /// <exception cref="ModelLoadException">A tensor the shapes are read from is missing or has an unexpected rank.</exception>
    internal static ClipVisionConfig InferConfig(ITensorSource source, string? prefix = null, int? numAttentionHeads = null)
    {
        prefix ??= FindFilePrefix(source) ?? throw NotFound(source);
        long[] Shape(string key, int rank) =>
            source.TryGetInfo(prefix + key, out var info) && info.Shape.Length == rank ? info.Shape
            : throw new ModelLoadException($"{source.Location}: cannot infer the CLIP architecture: '{prefix}{key}' is missing or not of rank {rank}.", source.Location, prefix + key);

        var patch = Shape("embeddings.patch_embedding.weight", 4);                  // [D, C, p, p]
        long positions = Shape("embeddings.position_embedding.weight", 2)[0];       // 1 + (S/p)²
        long side = (long)Math.Round(Math.Sqrt(positions - 1));
        if (side * side != positions - 1)
            throw new ModelLoadException($"{source.Location}: '{prefix}embeddings.position_embedding.weight' has {positions} positions, not 1 + a square number of patches.", source.Location, prefix + "embeddings.position_embedding.weight");
        int hidden = (int)patch[0];
        int layers = source.Keys.Where(k => k.StartsWith(prefix + "encoder.layers.", StringComparison.Ordinal))
            .Select(k => k[(prefix.Length + "encoder.layers.".Length)..].Split('.')[0])
            .Distinct().Count();
        var heads = numAttentionHeads ?? Math.Max(1, hidden / 64);
        if (hidden % heads != 0)
            throw new ModelLoadException($"{source.Location}: width {hidden} is not divisible by {heads} attention heads.", source.Location, prefix + "embeddings.class_embedding");
        return new ClipVisionConfig
        {
            HiddenSize = hidden,
            IntermediateSize = (int)Shape("encoder.layers.0.mlp.fc1.weight", 2)[0],
            NumHiddenLayers = layers,
            NumAttentionHeads = heads,
            PatchSize = (int)patch[2],
            NumChannels = (int)patch[1],
            ImageSize = (int)(side * patch[2]),
        };
    }

    /// <summary>
    /// Keys (full, from the file root) that a CLIP checkpoint holds besides the vision tower and that are skipped on
    /// purpose: the non-persistent <c>position_ids</c> buffer older files carry, the text tower and both projections.
    /// </summary>
    internal static bool IsForeignKey(string key) =>
        key.EndsWith("embeddings.position_ids", StringComparison.Ordinal)
        || key.StartsWith("text_model.", StringComparison.Ordinal)
        || key.StartsWith("text_projection.", StringComparison.Ordinal)
        || key.StartsWith("visual_projection.", StringComparison.Ordinal)
        || key == "logit_scale";

    static ModelLoadException NotFound(ITensorSource source) =>
        new($"{source.Location}: no CLIP vision tower found (looked for '{ProbeKey}' with prefixes '' and 'vision_model.').", source.Location, ProbeKey);
}
