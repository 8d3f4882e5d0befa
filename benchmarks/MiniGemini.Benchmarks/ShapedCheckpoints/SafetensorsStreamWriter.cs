using System.Buffers.Binary;
using System.Diagnostics;
using System.Text.Json;
using System.Text.Json.Nodes;
using MiniGemini.Checkpoints;
using MiniGemini.Modeling;

namespace MiniGemini.Benchmarks.ShapedCheckpoints;

/// <summary>A file written by the shaped-checkpoint tools, for the report.</summary>
/// <param name="Path">Where.</param>
/// <param name="Bytes">Its size.</param>
/// <param name="Tensors">Tensors in it (0 for a config file).</param>
/// <param name="Seconds">Time taken to write it.</param>
public sealed record WrittenFile(string Path, long Bytes, int Tensors, double Seconds);

/// <summary>
/// Writes safetensors files without holding their tensors: the header is computed from the (key, dtype, shape) list
/// first, then each tensor's bytes are generated and streamed to disk. Data is laid out as the safetensors library
/// does it, the widest element type first and by key within a type, so that every tensor is aligned to its element
/// size; the header is padded with spaces to a multiple of 8 bytes.
/// </summary>
public static class SafetensorsStreamWriter
{
    /// <summary>Writes <paramref name="tensors"/> with values from <paramref name="seed"/> to <paramref name="path"/>.</summary>
    public static WrittenFile Write(string path, IReadOnlyList<TensorSpec> tensors, ulong seed)
    {
        var clock = Stopwatch.StartNew();
        var ordered = DataOrder(tensors);
        var header = Header(ordered);
        var buffer = new byte[TensorValues.ChunkBytes];
        using (var file = new StreamingFile(path))
        {
            Span<byte> length = stackalloc byte[8];
            BinaryPrimitives.WriteUInt64LittleEndian(length, (ulong)header.Length);
            file.Write(length);
            file.Write(header);
            foreach (var tensor in ordered) new TensorValues(tensor, seed).CopyTo(file.Write, buffer);
        }
        return new WrittenFile(path, new FileInfo(path).Length, tensors.Count, clock.Elapsed.TotalSeconds);
    }

    /// <summary>The order of the data section, as <see cref="SafetensorsWriter.DataOrder"/>.</summary>
    public static IReadOnlyList<TensorSpec> DataOrder(IEnumerable<TensorSpec> tensors) =>
        SafetensorsWriter.DataOrder(tensors.Select(t => (t.Key, t.Type.Size(), t))).Select(t => t.Item).ToList();

    /// <summary>The header for tensors stored in <paramref name="ordered"/> order (<see cref="SafetensorsWriter.Header"/>).</summary>
    public static byte[] Header(IReadOnlyList<TensorSpec> ordered) =>
        SafetensorsWriter.Header(ordered.Select(t => (t.Key, t.Type.SafetensorsName(), t.Shape, t.Bytes)), new Dictionary<string, string> { ["format"] = "pt" });
}

/// <summary>
/// Splits a checkpoint into safetensors shards as transformers' <c>save_pretrained</c> does: tensors in state-dict
/// order go into the current shard until the next one would push it past the limit (a tensor larger than the limit
/// gets a shard of its own); shards are named <c>model-00001-of-00003.safetensors</c> and listed in
/// <c>model.safetensors.index.json</c> (<c>metadata.total_size</c> and a key-sorted <c>weight_map</c>). A checkpoint
/// that fits in one shard is a single <c>model.safetensors</c> without an index.
/// </summary>
public static class SafetensorsShardWriter
{
    /// <summary>transformers' default <c>max_shard_size</c>, "5GB" (decimal).</summary>
    public const long DefaultMaxShardBytes = 5_000_000_000;

    /// <summary>The index file's name.</summary>
    public const string IndexFile = "model.safetensors.index.json";

    /// <summary>The tensors of each shard, in state-dict order.</summary>
    public static IReadOnlyList<IReadOnlyList<TensorSpec>> Split(IReadOnlyList<TensorSpec> tensors, long maxShardBytes)
    {
        var shards = new List<IReadOnlyList<TensorSpec>>();
        var current = new List<TensorSpec>();
        long size = 0;
        foreach (var tensor in tensors)
        {
            if (current.Count > 0 && size + tensor.Bytes > maxShardBytes)
            {
                shards.Add(current);
                (current, size) = ([], 0);
            }
            current.Add(tensor);
            size += tensor.Bytes;
        }
        if (current.Count > 0) shards.Add(current);
        return shards;
    }

    /// <summary>Shard file names for <paramref name="count"/> shards.</summary>
    public static IReadOnlyList<string> ShardNames(int count) =>
        count == 1 ? ["model.safetensors"] : Enumerable.Range(1, count).Select(i => $"model-{i:D5}-of-{count:D5}.safetensors").ToList();

    /// <summary>Writes the shards (and the index when there are several) into <paramref name="folder"/>.</summary>
    /// <param name="onFile">Called after each file is written (progress output).</param>
    public static IReadOnlyList<WrittenFile> Write(string folder, IReadOnlyList<TensorSpec> tensors, ulong seed,
        long maxShardBytes = DefaultMaxShardBytes, Action<WrittenFile>? onFile = null)
    {
        Directory.CreateDirectory(folder);
        var shards = Split(tensors, maxShardBytes);
        var names = ShardNames(shards.Count);
        var written = new List<WrittenFile>();
        for (int i = 0; i < shards.Count; i++)
        {
            var file = SafetensorsStreamWriter.Write(Path.Combine(folder, names[i]), shards[i], seed);
            written.Add(file);
            onFile?.Invoke(file);
        }
        if (shards.Count > 1)
        {
            var clock = Stopwatch.StartNew();
            var index = Path.Combine(folder, IndexFile);
            File.WriteAllText(index, Index(shards, names));
            var file = new WrittenFile(index, new FileInfo(index).Length, 0, clock.Elapsed.TotalSeconds);
            written.Add(file);
            onFile?.Invoke(file);
        }
        return written;
    }

    /// <summary>The index JSON: <c>{"metadata": {"total_size": N}, "weight_map": {key: shard}}</c>, keys sorted, two-space indent.</summary>
    public static string Index(IReadOnlyList<IReadOnlyList<TensorSpec>> shards, IReadOnlyList<string> names)
    {
        var map = shards.SelectMany((shard, i) => shard.Select(t => (t.Key, File: names[i])))
            .OrderBy(e => e.Key, StringComparer.Ordinal);
        var weightMap = new JsonObject();
        foreach (var (key, file) in map) weightMap[key] = file;
        var index = new JsonObject
        {
            ["metadata"] = new JsonObject { ["total_size"] = shards.Sum(s => s.Sum(t => t.Bytes)) },
            ["weight_map"] = weightMap,
        };
        return index.ToJsonString(new JsonSerializerOptions { WriteIndented = true }) + "\n";
    }
}
