using TorchSharp;
using static TorchSharp.torch;

namespace MiniGemini.Llm;

/// <summary>
/// Keys and values of every layer, preallocated for <see cref="Capacity"/> positions and written in place, so decoding
/// allocates nothing that grows with the sequence. A layer's keys and values share one tensor [B, capacity,
/// 2·kv_heads, d], each position holding its keys then its values as the fused projection lays them out, so a step
/// writes both with one copy; attention reads them through fixed views [B, kv_heads, capacity, d]. The tensors are
/// detached from any dispose scope: the cache owns them until <see cref="Dispose"/>.
/// </summary>
internal sealed class KvCache : IDisposable
{
    readonly Tensor[] _entries; // [B, capacity, 2·kv, d] per layer
    readonly Tensor[] _keys;    // [B, kv, capacity, d] views of _entries
    readonly Tensor[] _values;  // [B, kv, capacity, d] views of _entries

    public KvCache(int layers, int batch, int kvHeads, int capacity, int headDim, ScalarType dtype, Device device)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(batch, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(capacity, 1);
        Batch = batch;
        Capacity = capacity;
        // Inference tensors: the cache is only ever written under inference mode.
        using var _ = inference_mode();
        using var scope = NewDisposeScope();
        _entries = new Tensor[layers];
        _keys = new Tensor[layers];
        _values = new Tensor[layers];
        for (int i = 0; i < layers; i++)
        {
            _entries[i] = zeros([batch, capacity, 2 * kvHeads, headDim], dtype, device).DetachFromDisposeScope();
            var (keys, values) = Split(_entries[i]);
            _keys[i] = keys.DetachFromDisposeScope();
            _values[i] = values.DetachFromDisposeScope();
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
    /// Writes one layer's new keys and values, [B, T, 2·kv, d] (keys first), after the filled positions and returns
    /// views of everything filled so far, keys and values [B, kv, Length + T, d] each. <see cref="Advance"/> commits
    /// the step once every layer has written.
    /// </summary>
    public (Tensor Keys, Tensor Values) Write(int layer, Tensor keysAndValues)
    {
        long t = keysAndValues.size(1);
        _entries[layer].narrow(1, Length, t).copy_(keysAndValues);
        return (_keys[layer].narrow(2, 0, Length + t), _values[layer].narrow(2, 0, Length + t));
    }

    /// <summary>[B, T, 2·kv, d] (keys first) → keys and values [B, kv, T, d] (views).</summary>
    public static (Tensor Keys, Tensor Values) Split(Tensor keysAndValues)
    {
        var halves = keysAndValues.chunk(2, 2);
        return (halves[0].transpose(1, 2), halves[1].transpose(1, 2));
    }

    public void Advance(long newTokens)
    {
        EnsureRoom(newTokens);
        Length += (int)newTokens;
    }

    public void Dispose()
    {
        foreach (var t in _keys.Concat(_values).Concat(_entries)) t.Dispose();
    }
}
