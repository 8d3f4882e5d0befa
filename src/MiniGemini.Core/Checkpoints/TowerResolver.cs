using MiniGemini.Modeling;
using MiniGemini.Vision;

namespace MiniGemini.Checkpoints;

/// <summary>A tower's config, the folder it came from (null when read from the embedded weights) and the rows of the key-rename table that read its weights.</summary>
internal sealed record ResolvedTower<TConfig>(TConfig Config, string? Folder, IReadOnlyList<KeyRename> Rows);

/// <summary>
/// Finds the two vision towers as real checkpoints need it. Weights found inside the MGM checkpoint are used (released
/// checkpoints carry both frozen towers); the tower folders named in config.json are resolved relative to the model
/// folder, then by their last path segment under the search roots (configs name <c>model_zoo/OpenAI/…</c>, which rarely
/// exists as written). A CLIP tower embedded in the checkpoint still needs its architecture: from its folder when one is
/// found, else from the weights when they match a known OpenAI CLIP ViT (whose heads are 64 wide).
/// </summary>
internal sealed class TowerResolver
{
    readonly string _modelFolder;
    readonly IReadOnlyList<string> _searchRoots;

    public TowerResolver(string modelFolder, IEnumerable<string> searchRoots)
    {
        _modelFolder = Path.GetFullPath(modelFolder);
        _searchRoots = searchRoots.Select(Path.GetFullPath).ToList();
    }

    /// <summary>Candidate folders for a tower path, in the order they are tried.</summary>
    public IReadOnlyList<string> Candidates(string configured)
    {
        var list = new List<string>();
        if (Path.IsPathRooted(configured)) list.Add(configured);
        else list.Add(Path.GetFullPath(Path.Combine(_modelFolder, configured)));
        var name = Path.GetFileName(configured.TrimEnd('/', '\\'));
        if (name.Length > 0)
            foreach (var root in _searchRoots.Prepend(_modelFolder).Append(Path.GetDirectoryName(_modelFolder)!))
                list.Add(Path.Combine(root, name));
        return list.Distinct(StringComparer.Ordinal).ToList();
    }

    /// <summary>The first candidate folder that exists and passes <paramref name="accept"/>, or null.</summary>
    public string? Find(string? configured, Func<string, bool> accept, List<string> lookedAt)
    {
        if (string.IsNullOrWhiteSpace(configured)) return null;
        foreach (var candidate in Candidates(configured))
        {
            lookedAt.Add(candidate);
            if (Directory.Exists(candidate) && accept(candidate)) return candidate;
        }
        return null;
    }

    /// <summary>
    /// The CLIP tower's config and where its weights are: in the MGM checkpoint when embedded, else in the tower folder
    /// (whose file must hold nothing but a CLIP and the parts MGM drops). The config comes from the folder when one is
    /// found, else from the embedded weights when they match a known OpenAI CLIP ViT.
    /// </summary>
    public ResolvedTower<ClipVisionConfig> ResolveClip(string? explicitPath, string? configured, ITensorSource mgmCheckpoint, List<IDisposable> opened)
    {
        var lookedAt = new List<string>();
        string? folder = explicitPath is not null
            ? RequireFolder(explicitPath, "CLIP", lookedAt)
            : Find(configured, f => File.Exists(Path.Combine(f, "config.json")), lookedAt);
        bool embedded = mgmCheckpoint.TryGetInfo(MgmCheckpointKeys.ClipTower + "embeddings.class_embedding", out _);
        var embeddedRows = new[] { new KeyRename(MgmCheckpointKeys.ClipTower, mgmCheckpoint, MgmCheckpointKeys.ClipTower) };

        if (folder is not null)
        {
            var config = ClipVisionConfig.Load(Path.Combine(folder, "config.json"));
            if (embedded) return new(config, folder, embeddedRows);
            var source = Checkpoint.Open(folder);
            opened.Add(source);
            return new(config, folder, [new KeyRename(MgmCheckpointKeys.ClipTower, source, ClipVisionTransformer.Locate(source))]);
        }
        if (embedded)
        {
            var inferred = ClipVisionTransformer.InferConfig(mgmCheckpoint, MgmCheckpointKeys.ClipTower);
            if (KnownOpenAiVit(inferred)) return new(inferred, null, embeddedRows);
            lookedAt.Add($"{mgmCheckpoint.Location}: embedded CLIP weights ({inferred.HiddenSize} wide, {inferred.NumHiddenLayers} layers) " +
                         "match no known OpenAI CLIP ViT, so their head count is unknown without the tower's config.json");
        }
        throw ModelLoadException.TowerNotFound("CLIP", explicitPath ?? configured ?? "(mm_vision_tower is not set)", lookedAt);
    }

    /// <summary>The ConvNeXt's config and where its weights are: in the MGM checkpoint when embedded (its shapes tell the architecture), else in its folder.</summary>
    public ResolvedTower<ConvNeXtConfig> ResolveConvNeXt(string? explicitPath, string? configured, ITensorSource mgmCheckpoint, List<IDisposable> opened)
    {
        var lookedAt = new List<string>();
        if (IsConvNeXtEmbedded(mgmCheckpoint))
            return new(ConvNeXtConfig.Infer(mgmCheckpoint, MgmCheckpointKeys.AuxStem, MgmCheckpointKeys.AuxStages), null,
                [new KeyRename(MgmCheckpointKeys.AuxStem, mgmCheckpoint, MgmCheckpointKeys.AuxStem), new KeyRename(MgmCheckpointKeys.AuxStages, mgmCheckpoint, MgmCheckpointKeys.AuxStages)]);
        string? folder = explicitPath is not null
            ? RequireFolder(explicitPath, "ConvNeXt", lookedAt)
            : Find(configured, f => Checkpoint.FolderCandidates.Any(c => File.Exists(Path.Combine(f, c))), lookedAt);
        if (folder is null)
            throw ModelLoadException.TowerNotFound("ConvNeXt", configured ?? "(mm_vision_tower_aux is not set)", lookedAt);
        var source = Checkpoint.Open(folder);
        opened.Add(source);
        var (config, stem, stages) = ConvNeXtEncoder.ReadFile(source, folder);
        return new(config, folder, [new KeyRename(MgmCheckpointKeys.AuxStem, source, stem), new KeyRename(MgmCheckpointKeys.AuxStages, source, stages)]);
    }

    /// <summary>Whether the MGM checkpoint carries the ConvNeXt trunk itself.</summary>
    public static bool IsConvNeXtEmbedded(ITensorSource mgmCheckpoint) => mgmCheckpoint.TryGetInfo(MgmCheckpointKeys.AuxStem + "0.weight", out _);

    static string RequireFolder(string path, string tower, List<string> lookedAt)
    {
        var full = Path.GetFullPath(path);
        lookedAt.Add(full);
        return Directory.Exists(full) ? full : throw ModelLoadException.TowerNotFound(tower, path, lookedAt);
    }

    /// <summary>OpenAI's released CLIP ViTs, whose heads are all 64 wide: (width, layers, patch, MLP width).</summary>
    static bool KnownOpenAiVit(ClipVisionConfig c) =>
        (c.HiddenSize, c.NumHiddenLayers, c.PatchSize, c.IntermediateSize) is (1024, 24, 14, 4096) or (768, 12, 16, 3072) or (768, 12, 32, 3072);
}
