using System.Buffers.Binary;
using System.Text.Json;
using TorchSharp;

namespace MiniGemini.Checkpoints;

/// <summary>Writes tensors to a <c>.safetensors</c> file (keys sorted, 8-byte aligned header, as the Python library does).</summary>
public static class SafetensorsWriter
{
    /// <summary>Writes <paramref name="tensors"/> (any device; copied to the CPU as needed) to <paramref name="path"/>.</summary>
    public static void Write(string path, IReadOnlyDictionary<string, torch.Tensor> tensors, IReadOnlyDictionary<string, string>? metadata = null)
    {
        var ordered = tensors.OrderBy(kv => kv.Key, StringComparer.Ordinal).ToList();
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
            foreach (var (name, tensor) in ordered)
            {
                long bytes = tensor.NumberOfElements * StorageTypes.SizeOf(tensor.dtype);
                json.WriteStartObject(name);
                json.WriteString("dtype", StorageTypes.SafetensorsName(tensor.dtype));
                json.WriteStartArray("shape");
                foreach (var d in tensor.shape) json.WriteNumberValue(d);
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

        using var file = new FileStream(path, FileMode.Create, FileAccess.Write);
        Span<byte> length = stackalloc byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(length, (ulong)buffer.Length);
        file.Write(length);
        buffer.WriteTo(file);
        foreach (var (_, tensor) in ordered)
        {
            using var cpu = tensor.detach().cpu().contiguous();
            TensorMemory.ForEachChunk(cpu, (chunk, _) => file.Write(chunk));
        }
    }
}
