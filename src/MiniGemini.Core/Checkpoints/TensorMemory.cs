using System.Runtime.InteropServices;
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

    /// <summary>The address of a CPU tensor's first element, whatever its strides.</summary>
    public static unsafe nint Address(torch.Tensor tensor)
    {
        using var first = tensor.as_strided([1], [1], tensor.storage_offset());
        fixed (byte* p = first.bytes) return (nint)p;
    }

    /// <summary>
    /// Asks the kernel to read in every page of a contiguous CPU tensor's memory now (<c>MADV_POPULATE_READ</c>, Linux
    /// 5.14+), as a read of the file would: a mapped tensor is then resident after loading instead of faulting page by
    /// page in the first forward. Where the call is unavailable the pages come in on first use.
    /// </summary>
    public static void ReadIn(torch.Tensor tensor)
    {
        if (!OperatingSystem.IsLinux() || tensor.NumberOfElements == 0) return;
        const long page = 4096;
        long start = Address(tensor), end = start + tensor.NumberOfElements * tensor.ElementSize;
        long aligned = start & ~(page - 1);
        _ = madvise((nint)aligned, (nuint)(end - aligned), MadvPopulateRead);
    }

    const int MadvPopulateRead = 22;

    [DllImport("libc", SetLastError = true)]
    static extern int madvise(nint address, nuint length, int advice);
}
