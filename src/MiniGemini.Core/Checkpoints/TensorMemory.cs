using TorchSharp;

namespace MiniGemini.Checkpoints;

/// <summary>Receives one chunk of a tensor's bytes (to read or fill), with the chunk's byte offset within the tensor.</summary>
internal delegate void ChunkAction(Span<byte> chunk, long byteOffset);

/// <summary>Raw byte access to contiguous CPU tensors, in chunks (a Span is limited to 2 GiB).</summary>
internal static class TensorMemory
{
    const long ChunkBytes = 1L << 30;

    /// <summary>
    /// Hands the tensor's bytes to <paramref name="action"/> chunk by chunk, with
    /// each chunk's byte offset within the tensor.
    /// </summary>
    public static void ForEachChunk(torch.Tensor tensor, ChunkAction action)
    {
        if (!tensor.is_contiguous() || tensor.device_type != DeviceType.CPU)
            throw new ArgumentException("Tensor must be contiguous and on the CPU.", nameof(tensor));
        long count = tensor.NumberOfElements;
        if (count == 0) return;
        long elementSize = tensor.ElementSize;
        long perChunk = Math.Max(1, ChunkBytes / elementSize);
        using var flat = tensor.view(-1);
        for (long start = 0; start < count; start += perChunk)
        {
            long n = Math.Min(perChunk, count - start);
            using var part = flat.narrow(0, start, n);
            action(part.bytes, start * elementSize);
        }
    }
}
