namespace MiniGemini.Checkpoints;

/// <summary>Opens any supported checkpoint by path.</summary>
internal static class Checkpoint
{
    /// <summary>
    /// Opens a checkpoint: a <c>.safetensors</c> file, a sharded index (<c>*.index.json</c>), a zip-format PyTorch
    /// <c>.bin</c>/<c>.pt</c>/<c>.pth</c>, or a folder holding one of <see cref="FolderCandidates"/> (the first
    /// found, in that order of preference).
    /// </summary>
    /// <exception cref="ModelLoadException">Nothing loadable is there, or the file is malformed.</exception>
    public static ITensorSource Open(string path, TensorReadMode mode = TensorReadMode.MemoryMapped)
    {
        if (Directory.Exists(path))
        {
            foreach (var name in FolderCandidates)
            {
                var candidate = Path.Combine(path, name);
                if (File.Exists(candidate)) return Open(candidate, mode);
            }
            throw new ModelLoadException(
                $"{Path.GetFullPath(path)}: no checkpoint found (looked for {string.Join(", ", FolderCandidates)}).", path);
        }
        if (path.EndsWith(".index.json", StringComparison.OrdinalIgnoreCase)) return ShardedCheckpoint.Open(path, mode);
        if (path.EndsWith(".safetensors", StringComparison.OrdinalIgnoreCase)) return SafetensorsFile.Open(path, mode);
        if (File.Exists(path)) return TorchPickleCheckpoint.Open(path);
        throw new ModelLoadException($"{Path.GetFullPath(path)}: file not found.", path);
    }

    /// <summary>Checkpoint file names looked for in a folder, most preferred first.</summary>
    public static IReadOnlyList<string> FolderCandidates { get; } =
    [
        "model.safetensors", "model.safetensors.index.json",
        "open_clip_model.safetensors", "open_clip_pytorch_model.bin", "pytorch_model.bin", "pytorch_model.bin.index.json",
    ];
}
