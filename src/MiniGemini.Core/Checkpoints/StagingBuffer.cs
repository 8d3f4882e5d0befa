using TorchSharp;

namespace MiniGemini.Checkpoints;

/// <summary>
/// How a source fills a contiguous destination from its stored bytes: straight into the destination's memory where the
/// dtype is the stored one on the CPU, otherwise through this buffer part by part, converted by <c>copy_</c>. The buffer
/// is allocated at the first conversion and reused by every later one of the same source until the source is disposed.
/// </summary>
internal sealed class StagingBuffer : IDisposable
{
    readonly long _bytes;
    torch.Tensor? _buffer;

    /// <param name="bytes">The buffer's size: a conversion passes through it in parts of at most this many bytes.</param>
    public StagingBuffer(long bytes) => _bytes = bytes;

    /// <summary>
    /// Fills the contiguous <paramref name="destination"/> from data stored as <paramref name="stored"/>, whose bytes
    /// <paramref name="read"/> delivers in order (each chunk with its byte offset within the stored tensor).
    /// </summary>
    public void ReadInto(torch.Tensor destination, torch.ScalarType stored, ChunkAction read)
    {
        long count = destination.NumberOfElements;
        if (count == 0) return;
        using var _ = torch.no_grad();
        if (destination.dtype == stored && destination.device_type == DeviceType.CPU)
        {
            // Fresh memory is faulted in far faster by a write from here (in huge pages where libtorch asked for them)
            // than page by page inside the kernel's copy of a read.
            destination.zero_().Dispose(); // zero_ returns a second handle of the same tensor
            TensorMemory.ForEachChunk(destination, read);
            return;
        }
        long elementSize = StorageTypes.SizeOf(stored), capacity = Math.Max(1, _bytes / elementSize), perPart = Math.Min(count, capacity);
        var buffer = Buffer(stored, capacity);
        using var target = destination.view(-1);
        for (long start = 0; start < count; start += perPart)
        {
            long n = Math.Min(perPart, count - start), partOffset = start * elementSize;
            using var part = buffer.narrow(0, 0, n);
            TensorMemory.ForEachChunk(part, (chunk, at) => read(chunk, partOffset + at));
            using var slice = target.narrow(0, start, n);
            slice.copy_(part);
        }
    }

    /// <summary>The buffer, of <paramref name="elements"/> elements of <paramref name="dtype"/>; another dtype takes a new one.</summary>
    torch.Tensor Buffer(torch.ScalarType dtype, long elements)
    {
        if (_buffer?.dtype != dtype)
        {
            _buffer?.Dispose();
            // Kept past any dispose scope of the caller: the next call may come from outside it.
            _buffer = torch.empty(elements, dtype).DetachFromDisposeScope();
        }
        return _buffer;
    }

    /// <summary>Frees the buffer.</summary>
    public void Dispose()
    {
        _buffer?.Dispose();
        _buffer = null;
    }
}
