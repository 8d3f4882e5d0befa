using System.Text.Json;
using TorchSharp;

namespace MiniGemini.Checkpoints;

/// <summary>
/// A checkpoint split over several files, described by <c>model.safetensors.index.json</c> or
/// <c>pytorch_model.bin.index.json</c> (<c>{"weight_map": {"key": "shard file"}}</c>). Every shard is opened and validated up front.
/// </summary>
internal sealed class ShardedCheckpoint : ITensorSource
{
    readonly Dictionary<string, ITensorSource> _shardOf = new(StringComparer.Ordinal);
    readonly List<ITensorSource> _shards = [];

    ShardedCheckpoint(string indexPath) => Location = indexPath;

    /// <summary>
    /// Reads an index file, checks that every shard it names exists, opens each (its header is validated) and checks
    /// that each key is in the shard the index names.
    /// </summary>
    /// <exception cref="ModelLoadException">
    /// The index is malformed, names a missing or unsafe shard path, a shard is truncated or malformed, or a shard lacks a key the index puts in it.
    /// </exception>
    public static ShardedCheckpoint Open(string indexPath, TensorReadMode mode = TensorReadMode.MemoryMapped)
    {
        indexPath = Path.GetFullPath(indexPath);
        if (!File.Exists(indexPath)) throw new ModelLoadException($"{indexPath}: file not found.", indexPath);
        var folder = Path.GetDirectoryName(indexPath)!;
        var map = new Dictionary<string, string>(StringComparer.Ordinal);
        try
        {
            using var doc = JsonDocument.Parse(File.ReadAllBytes(indexPath));
            if (!doc.RootElement.TryGetProperty("weight_map", out var weightMap) || weightMap.ValueKind != JsonValueKind.Object)
                throw new ModelLoadException($"{indexPath}: no 'weight_map' object.", indexPath);
            foreach (var entry in weightMap.EnumerateObject())
            {
                if (entry.Value.ValueKind != JsonValueKind.String)
                    throw new ModelLoadException($"{indexPath}: weight_map['{entry.Name}'] is not a file name.", indexPath, entry.Name);
                var shard = entry.Value.GetString()!;
                var full = Path.GetFullPath(Path.Combine(folder, shard));
                if (Path.GetDirectoryName(full) != folder)
                    throw new ModelLoadException($"{indexPath}: shard '{shard}' of '{entry.Name}' is outside the checkpoint folder.", indexPath, entry.Name);
                map[entry.Name] = full;
            }
        }
        catch (JsonException e)
        {
            throw new ModelLoadException($"{indexPath}: not valid JSON ({e.Message}).", indexPath, inner: e);
        }
        foreach (var missing in map.Values.Distinct().Where(f => !File.Exists(f)))
            throw new ModelLoadException($"{indexPath}: shard {Path.GetFileName(missing)} does not exist.", indexPath,
                map.First(kv => kv.Value == missing).Key);
        var checkpoint = new ShardedCheckpoint(indexPath);
        try
        {
            // Every shard's header is read and checked against its length now, so a truncated shard fails by name
            // before a model the size of the checkpoint is allocated.
            var shards = new Dictionary<string, ITensorSource>(StringComparer.Ordinal);
            foreach (var shard in map.Values.Distinct())
                checkpoint._shards.Add(shards[shard] = Checkpoint.Open(shard, mode));
            foreach (var (key, shard) in map)
            {
                if (!shards[shard].TryGetInfo(key, out _))
                    throw new ModelLoadException($"{indexPath}: the index puts '{key}' in {Path.GetFileName(shard)}, which does not hold it.", indexPath, key);
                checkpoint._shardOf[key] = shards[shard];
            }
            return checkpoint;
        }
        catch
        {
            checkpoint.Dispose();
            throw;
        }
    }

    /// <inheritdoc/>
    public string Location { get; }

    /// <inheritdoc/>
    public IReadOnlyCollection<string> Keys => _shardOf.Keys;

    /// <inheritdoc/>
    public bool TryGetInfo(string key, out TensorInfo info)
    {
        info = null!;
        return _shardOf.TryGetValue(key, out var shard) && shard.TryGetInfo(key, out info);
    }

    /// <inheritdoc/>
    public torch.Tensor Load(string key) => ShardOf(key).Load(key);

    /// <inheritdoc/>
    public void ReadInto(string key, torch.Tensor destination) => ShardOf(key).ReadInto(key, destination);

    /// <inheritdoc/>
    public bool TryMap(string key, out torch.Tensor tensor) => ShardOf(key).TryMap(key, out tensor);

    ITensorSource ShardOf(string key) =>
        _shardOf.TryGetValue(key, out var shard) ? shard : throw new ModelLoadException($"{Location}: no tensor '{key}'.", Location, key);

    /// <inheritdoc/>
    public void Dispose()
    {
        foreach (var shard in _shards) shard.Dispose();
        _shards.Clear();
    }
}
