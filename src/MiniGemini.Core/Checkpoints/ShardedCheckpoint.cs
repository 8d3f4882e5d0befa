using System.Text.Json;
using TorchSharp;

namespace MiniGemini.Checkpoints;

/// <summary>
/// A checkpoint split over several files, described by <c>model.safetensors.index.json</c> or
/// <c>pytorch_model.bin.index.json</c> (<c>{"weight_map": {"key": "shard file"}}</c>). Every shard is opened and validated up front.
/// </summary>
public sealed class ShardedCheckpoint : ITensorSource
{
    readonly Dictionary<string, string> _weightMap;
    readonly Dictionary<string, ITensorSource> _open = new(StringComparer.Ordinal);
    readonly TensorReadMode _mode;
    readonly object _gate = new();

    ShardedCheckpoint(string indexPath, Dictionary<string, string> weightMap, TensorReadMode mode)
    {
        Location = indexPath;
        _weightMap = weightMap;
        _mode = mode;
    }

    /// <summary>Reads an index file, checks that every shard it names exists, and opens each (its header is validated).</summary>
    /// <exception cref="CheckpointFormatException">The index is malformed, names a missing or unsafe shard path, or a shard is truncated or malformed.</exception>
    public static ShardedCheckpoint Open(string indexPath, TensorReadMode mode = TensorReadMode.MemoryMapped)
    {
        indexPath = Path.GetFullPath(indexPath);
        if (!File.Exists(indexPath)) throw new CheckpointException($"{indexPath}: file not found.", indexPath);
        var folder = Path.GetDirectoryName(indexPath)!;
        var map = new Dictionary<string, string>(StringComparer.Ordinal);
        try
        {
            using var doc = JsonDocument.Parse(File.ReadAllBytes(indexPath));
            if (!doc.RootElement.TryGetProperty("weight_map", out var weightMap) || weightMap.ValueKind != JsonValueKind.Object)
                throw new CheckpointFormatException($"{indexPath}: no 'weight_map' object.", indexPath);
            foreach (var entry in weightMap.EnumerateObject())
            {
                if (entry.Value.ValueKind != JsonValueKind.String)
                    throw new CheckpointFormatException($"{indexPath}: weight_map['{entry.Name}'] is not a file name.", indexPath, entry.Name);
                var shard = entry.Value.GetString()!;
                var full = Path.GetFullPath(Path.Combine(folder, shard));
                if (Path.GetDirectoryName(full) != folder)
                    throw new CheckpointFormatException($"{indexPath}: shard '{shard}' of '{entry.Name}' is outside the checkpoint folder.", indexPath, entry.Name);
                map[entry.Name] = full;
            }
        }
        catch (JsonException e)
        {
            throw new CheckpointFormatException($"{indexPath}: not valid JSON ({e.Message}).", indexPath, inner: e);
        }
        foreach (var missing in map.Values.Distinct().Where(f => !File.Exists(f)))
            throw new CheckpointFormatException($"{indexPath}: shard {Path.GetFileName(missing)} does not exist.", indexPath,
                map.First(kv => kv.Value == missing).Key);
        var checkpoint = new ShardedCheckpoint(indexPath, map, mode);
        try
        {
            // Every shard's header is read and checked against its length now, so a truncated shard fails by name
            // before a model the size of the checkpoint is allocated.
            foreach (var shard in map.Values.Distinct()) checkpoint._open[shard] = Checkpoint.Open(shard, mode);
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
    public IReadOnlyCollection<string> Keys => _weightMap.Keys;

    /// <inheritdoc/>
    public bool TryGetInfo(string key, out TensorInfo info)
    {
        info = null!;
        return _weightMap.TryGetValue(key, out var shard) && ShardOf(key, shard).TryGetInfo(key, out info);
    }

    /// <inheritdoc/>
    public torch.Tensor Load(string key)
    {
        if (!_weightMap.TryGetValue(key, out var shard))
            throw new CheckpointException($"{Location}: no tensor '{key}'.", Location, key);
        return ShardOf(key, shard).Load(key);
    }

    /// <inheritdoc/>
    public void ReadInto(string key, torch.Tensor destination)
    {
        if (!_weightMap.TryGetValue(key, out var shard))
            throw new CheckpointException($"{Location}: no tensor '{key}'.", Location, key);
        ShardOf(key, shard).ReadInto(key, destination);
    }

    /// <inheritdoc/>
    public bool TryMap(string key, out torch.Tensor tensor)
    {
        if (!_weightMap.TryGetValue(key, out var shard))
            throw new CheckpointException($"{Location}: no tensor '{key}'.", Location, key);
        return ShardOf(key, shard).TryMap(key, out tensor);
    }

    ITensorSource ShardOf(string key, string shard)
    {
        lock (_gate)
        {
            if (!_open.TryGetValue(shard, out var file))
                _open[shard] = file = Checkpoint.Open(shard, _mode);
            if (!file.TryGetInfo(key, out _))
                throw new CheckpointFormatException($"{Location}: the index puts '{key}' in {Path.GetFileName(shard)}, which does not hold it.", Location, key);
            return file;
        }
    }

    /// <inheritdoc/>
    public void Dispose()
    {
        lock (_gate)
        {
            foreach (var file in _open.Values) file.Dispose();
            _open.Clear();
        }
    }
}
