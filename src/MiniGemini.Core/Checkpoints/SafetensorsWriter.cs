using System.Buffers.Binary;
using System.Text.Json;
using TorchSharp;

namespace MiniGemini.Checkpoints;

/// <summary>
/// Writes tensors to a <c>.safetensors</c> file as the Python library does: the data of wider element types first, by
/// key within a type (so every tensor starts on a whole element and can be memory-mapped as a view), and the header
/// padded to a multiple of 8 bytes.
/// </summary>
internal static class SafetensorsWriter
{
    /// <summary>Writes <paramref name="tensors"/> (any device; copied to the CPU as needed) to <paramref name="path"/>.</summary>
    public static void Write(string path, IReadOnlyDictionary<string, torch.Tensor> tensors, IReadOnlyDictionary<string, string>? metadata = null)
    {
        var ordered = DataOrder(tensors.Select(kv => (kv.Key, StorageTypes.SizeOf(kv.Value.dtype), kv.Value)));
        var header = Header(ordered.Select(t => (t.Key, StorageTypes.SafetensorsName(t.Item.dtype), t.Item.shape,
            t.Item.NumberOfElements * StorageTypes.SizeOf(t.Item.dtype))), metadata);
        using var file = new FileStream(path, FileMode.Create, FileAccess.Write);
        Span<byte> length = stackalloc byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(length, (ulong)header.Length);
        file.Write(length);
        file.Write(header);
        foreach (var (_, _, tensor) in ordered)
        {
            using var cpu = tensor.detach().cpu().contiguous();
            TensorMemory.ForEachChunk(cpu, (chunk, _) => file.Write(chunk));
        }
    }

    /// <summary>The order of the data section: element size descending, then key (ordinal).</summary>
    public static IReadOnlyList<(string Key, int ElementSize, T Item)> DataOrder<T>(IEnumerable<(string Key, int ElementSize, T Item)> tensors) =>
        tensors.OrderByDescending(t => t.ElementSize).ThenBy(t => t.Key, StringComparer.Ordinal).ToList();

    /// <summary>
    /// The header JSON for tensors stored in the given order (name, safetensors dtype such as <c>BF16</c>, shape, bytes),
    /// padded with spaces to a multiple of 8 bytes; the 8-byte length that precedes it is the caller's.
    /// </summary>
    public static byte[] Header(IEnumerable<(string Name, string Dtype, long[] Shape, long Bytes)> ordered, IReadOnlyDictionary<string, string>? metadata = null)
    {
        using var buffer = new MemoryStream();
        using (var json = new Utf8JsonWriter(buffer))
        {
            json.WriteStartObject();
            if (metadata is { Count: > 0 })
            {
                json.WriteStartObject("__metadata__");
                foreach (var (k, v) in metadata) json.WriteString(k, v);
                json.WriteEndObject();
            }
            long offset = 0;
            foreach (var (name, dtype, shape, bytes) in ordered)
            {
                json.WriteStartObject(name);
                json.WriteString("dtype", dtype);
                json.WriteStartArray("shape");
                foreach (var d in shape) json.WriteNumberValue(d);
                json.WriteEndArray();
                json.WriteStartArray("data_offsets");
                json.WriteNumberValue(offset);
                json.WriteNumberValue(offset + bytes);
                json.WriteEndArray();
                json.WriteEndObject();
                offset += bytes;
            }
            json.WriteEndObject();
        }
        while (buffer.Length % 8 != 0) buffer.WriteByte((byte)' ');
        return buffer.ToArray();
    }
}
