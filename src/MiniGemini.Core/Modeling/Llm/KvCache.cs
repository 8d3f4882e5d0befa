using TorchSharp;
using static TorchSharp.torch;

namespace MiniGemini.Modeling;

/// <summary>
/// Keys and values of every layer, written in place into storage allocated ahead, so most decoding steps allocate
/// nothing. A layer's keys and values share one tensor [B, allocated, 2·kv_heads, d], each position holding its keys
/// then its values as the fused projection lays them out, so a step writes both with one copy; attention reads them
/// through views [B, kv_heads, allocated, d]. The storage starts at what the first forward needs (at least
/// <see cref="InitialPositions"/>) and doubles when full, up to <see cref="Capacity"/>: a request that may run to the end
/// of a 128k context holds memory for the positions it has used, not for the context. The tensors are detached from
/// any dispose scope: the cache owns them until <see cref="Dispose"/>.
/// </summary>
public sealed class KvCache : IDisposable
{
    /// <summary>Positions allocated at first, unless the first forward needs more.</summary>
    internal const int InitialPositions = 256;

    readonly Tensor[] _entries; // [B, allocated, 2·kv, d] per layer
    readonly Tensor[] _keys;    // [B, kv, allocated, d] views of _entries
    readonly Tensor[] _values;  // [B, kv, allocated, d] views of _entries
    readonly int _kvHeads, _headDim;
    readonly ScalarType _dtype;
    readonly Device _device;

    internal KvCache(int layers, int batch, int kvHeads, int capacity, int headDim, ScalarType dtype, Device device)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(batch, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(capacity, 1);
        Batch = batch;
        Capacity = capacity;
        (_kvHeads, _headDim, _dtype, _device) = (kvHeads, headDim, dtype, device);
        _entries = new Tensor[layers];
        _keys = new Tensor[layers];
        _values = new Tensor[layers];
        Allocate(Math.Min(capacity, InitialPositions));
    }

    /// <summary>Each layer's storage [B, allocated, 2·kv, d], for a compiled step that writes it itself.</summary>
    internal Tensor[] Entries => _entries;

    /// <summary>Rows (sequences) the cache holds.</summary>
    public int Batch { get; }

    /// <summary>Positions per row at most.</summary>
    public int Capacity { get; }

    /// <summary>Positions per row the storage holds now (grows up to <see cref="Capacity"/>).</summary>
    internal int Allocated { get; private set; }

    /// <summary>Positions filled so far (the same for every row; padding is handled by the attention mask).</summary>
    public int Length { get; private set; }

    /// <summary>
    /// Makes room for a forward of <paramref name="newTokens"/> tokens (growing the storage if needed); throws if they
    /// would not fit in <see cref="Capacity"/>.
    /// </summary>
    internal void EnsureRoom(long newTokens)
    {
        if (Length + newTokens > Capacity)
            throw new ContextLengthExceededException((int)(Length + newTokens), Capacity,
                $"The key/value cache holds {Capacity} positions; {Length} are filled and {newTokens} more were given.");
        if (Length + newTokens > Allocated) Allocate((int)Math.Min(Capacity, Math.Max(Length + newTokens, 2L * Allocated)));
    }

    /// <summary>New storage of <paramref name="positions"/> per row, holding the filled positions of the old one.</summary>
    void Allocate(int positions)
    {
        // Inference tensors: the cache is only ever written under inference mode.
        using var _ = inference_mode();
        using var scope = NewDisposeScope();
        for (int i = 0; i < _entries.Length; i++)
        {
            var entries = zeros([Batch, positions, 2 * _kvHeads, _headDim], _dtype, _device);
            if (_entries[i] is { } old)
            {
                entries.narrow(1, 0, Length).copy_(old.narrow(1, 0, Length));
                foreach (var t in new[] { _keys[i], _values[i], old }) t.Dispose();
            }
            _entries[i] = entries.DetachFromDisposeScope();
            var (keys, values) = Split(_entries[i]);
            _keys[i] = keys.DetachFromDisposeScope();
            _values[i] = values.DetachFromDisposeScope();
        }
        Allocated = positions;
    }

    /// <summary>
    /// Writes one layer's new keys and values, [B, T, 2·kv, d] (keys first), after the filled positions and returns
    /// views of everything filled so far, keys and values [B, kv, Length + T, d] each. <see cref="Advance"/> commits
    /// the step once every layer has written.
    /// </summary>
    internal (Tensor Keys, Tensor Values) Write(int layer, Tensor keysAndValues)
    {
        long t = keysAndValues.size(1);
        _entries[layer].narrow(1, Length, t).copy_(keysAndValues);
        return (_keys[layer].narrow(2, 0, Length + t), _values[layer].narrow(2, 0, Length + t));
    }

    /// <summary>[B, T, 2·kv, d] (keys first) → keys and values [B, kv, T, d] (views).</summary>
    internal static (Tensor Keys, Tensor Values) Split(Tensor keysAndValues)
    {
        var halves = keysAndValues.chunk(2, 2);
        return (halves[0].transpose(1, 2), halves[1].transpose(1, 2));
    }

    /// <summary>Bytes of the storage (<see cref="Allocated"/> positions, every layer).</summary>
    public long Bytes => _entries.Sum(e => e.NumberOfElements * e.ElementSize);

    /// <summary>
    /// Fills this empty cache with the first <paramref name="positions"/> of <paramref name="source"/> (same layers,
    /// rows and shapes): the keys and values of a prompt prefix computed by an earlier request.
    /// </summary>
    internal void CopyPrefixFrom(KvCache source, int positions)
    {
        if (Length != 0) throw new InvalidOperationException("Only an empty cache takes a prefix.");
        if (source.Batch != Batch || source._entries.Length != _entries.Length || source._kvHeads != _kvHeads || source._headDim != _headDim)
            throw new ArgumentException("The source cache has another layout.", nameof(source));
        ArgumentOutOfRangeException.ThrowIfGreaterThan(positions, source.Length);
        EnsureRoom(positions);
        using var _ = inference_mode();
        using var scope = NewDisposeScope();
        for (int i = 0; i < _entries.Length; i++)
            _entries[i].narrow(1, 0, positions).copy_(source._entries[i].narrow(1, 0, positions));
        Length = positions;
    }

    /// <summary>Shrinks the storage to the filled positions, for a cache that is kept but no longer written.</summary>
    internal void Trim()
    {
        if (Length > 0 && Length < Allocated) Allocate(Length);
    }

    internal void Advance(long newTokens)
    {
        EnsureRoom(newTokens);
        Length += (int)newTokens;
    }

    /// <summary>Frees the keys and values.</summary>
    public void Dispose()
    {
        foreach (var t in _keys.Concat(_values).Concat(_entries)) t.Dispose();
    }
}
