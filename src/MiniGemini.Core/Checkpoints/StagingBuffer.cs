using TorchSharp;

namespace MiniGemini.Checkpoints;

/// <summary>
/// The buffer through which a source converts tensors to another dtype part by part, allocated at the first
/// conversion and reused by every later one of the same source until the source is disposed.
/// </summary>
internal sealed class StagingBuffer : IDisposable
{
    readonly long _bytes;
    torch.Tensor? _buffer;

    /// <param name="bytes">The buffer's size: a conversion passes through it in parts of at most this many bytes.</param>
    public StagingBuffer(long bytes) => _bytes = bytes;

    /// <summary>Elements of <paramref name="elementSize"/> bytes that one part holds.</summary>
    public long ElementsPerPart(long elementSize) => Math.Max(1, _bytes / elementSize);

    /// <summary>
    /// The first <paramref name="elements"/> (at most <see cref="ElementsPerPart"/>) of the buffer as a 1-D tensor of
    /// <paramref name="dtype"/> (a view; dispose it). A source's tensors share one stored dtype as a rule; another one
    /// takes a new buffer.
    /// </summary>
    public torch.Tensor Part(torch.ScalarType dtype, long elements)
    {
        if (_buffer?.dtype != dtype)
        {
            _buffer?.Dispose();
            // Kept past any dispose scope of the caller: the next call may come from outside it.
            _buffer = torch.empty(ElementsPerPart(StorageTypes.SizeOf(dtype)), dtype).DetachFromDisposeScope();
        }
        return _buffer.narrow(0, 0, elements);
    }

    /// <summary>Frees the buffer.</summary>
    public void Dispose()
    {
        _buffer?.Dispose();
        _buffer = null;
    }
}
