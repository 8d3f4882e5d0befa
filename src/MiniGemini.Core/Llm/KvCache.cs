using TorchSharp;
using static TorchSharp.torch;

namespace MiniGemini.Llm;

/// <summary>
/// Keys and values of every layer, preallocated for <see cref="Capacity"/> positions ([B, kv_heads, capacity, d] per
/// layer) and written in place, so decoding allocates nothing that grows with the sequence. The tensors are
/// detached from any dispose scope: the cache owns them until <see cref="Dispose"/>.
/// </summary>
internal sealed class KvCache : IDisposable
{
    readonly Tensor[] _keys;
    readonly Tensor[] _values;

    public KvCache(int layers, int batch, int kvHeads, int capacity, int headDim, ScalarType dtype, Device device)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(batch, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(capacity, 1);
        Batch = batch;
        Capacity = capacity;
        // Inference tensors: the cache is only ever written under inference mode.
        using var _ = inference_mode();
        _keys = new Tensor[layers];
        _values = new Tensor[layers];
        for (int i = 0; i < layers; i++)
        {
            _keys[i] = zeros([batch, kvHeads, capacity, headDim], dtype, device).DetachFromDisposeScope();
            _values[i] = zeros([batch, kvHeads, capacity, headDim], dtype, device).DetachFromDisposeScope();
        }
    }

    /// <summary>Rows (sequences) the cache holds.</summary>
    public int Batch { get; }

    /// <summary>Positions per row.</summary>
    public int Capacity { get; }

    /// <summary>Positions filled so far (the same for every row; padding is handled by the attention mask).</summary>
    public int Length { get; private set; }

    /// <summary>Throws before a forward of <paramref name="newTokens"/> tokens that would not fit.</summary>
    public void EnsureRoom(long newTokens)
    {
        if (Length + newTokens > Capacity)
            throw new ContextLengthExceededException((int)(Length + newTokens), Capacity,
                $"The key/value cache holds {Capacity} positions; {Length} are filled and {newTokens} more were given.");
    }

    /// <summary>
    /// Writes one layer's new keys/values [B, kv, T, d] after the filled positions and returns views of everything
    /// filled so far, [B, kv, Length + T, d]. <see cref="Advance"/> commits the step once every layer has written.
    /// </summary>
    public (Tensor Keys, Tensor Values) Write(int layer, Tensor keys, Tensor values)
    {
        long t = keys.shape[2];
        _keys[layer].narrow(2, Length, t).copy_(keys);
        _values[layer].narrow(2, Length, t).copy_(values);
        return (_keys[layer].narrow(2, 0, Length + t), _values[layer].narrow(2, 0, Length + t));
    }

    public void Advance(long newTokens)
    {
        EnsureRoom(newTokens);
        Length += (int)newTokens;
    }

    /// <summary>Forgets every position (the memory stays allocated for reuse).</summary>
    public void Reset() => Length = 0;

    public void Dispose()
    {
        foreach (var t in _keys.Concat(_values)) t.Dispose();
    }
}
