using TorchSharp;
using static TorchSharp.torch;
using static TorchSharp.torch.nn.functional;

namespace MiniGemini.Modeling;

/// <summary>
/// Reads, during a forward, how much one attention head of one layer attends from chosen query positions to chosen key
/// positions: the log of the attention probability, with the autograd graph, so that a training loss can pull it up
/// (<see cref="Training.TrainingOptions.AnswerFocusWeight"/>). The forwards of this flow see it while
/// <see cref="Record"/> is in effect; the layer computes the probabilities of just these queries beside its own
/// attention, which it leaves unchanged.
/// </summary>
internal sealed class AttentionProbe : IDisposable
{
    static readonly AsyncLocal<AttentionProbe?> Active = new();

    readonly long[] _rows, _queries, _keys;
    Tensor? _logShares;

    /// <param name="layer">The decoder layer (0-based).</param>
    /// <param name="head">The query head of that layer.</param>
    /// <param name="rows">Batch row of each observation.</param>
    /// <param name="queries">Query position of each observation.</param>
    /// <param name="keys">Key position each query should attend to (≤ its query position).</param>
    public AttentionProbe(int layer, int head, long[] rows, long[] queries, long[] keys)
    {
        if (rows.Length != queries.Length || rows.Length != keys.Length)
            throw new ArgumentException($"{rows.Length} rows, {queries.Length} queries and {keys.Length} keys: one of each per observation.");
        for (int i = 0; i < keys.Length; i++)
            if (keys[i] > queries[i] || keys[i] < 0)
                throw new ArgumentException($"Observation {i}: key position {keys[i]} is not in [0, query position {queries[i]}].");
        (Layer, Head, _rows, _queries, _keys) = (layer, head, rows, queries, keys);
    }

    public int Layer { get; }
    public int Head { get; }

    /// <summary>The probe the forwards of this flow fill, or null.</summary>
    public static AttentionProbe? Current => Active.Value;

    /// <summary>Until disposed, forwards on this flow fill <paramref name="probe"/>.</summary>
    public static IDisposable Record(AttentionProbe probe)
    {
        var previous = Active.Value;
        Active.Value = probe;
        return new Restore(previous);
    }

    /// <summary>log P(query → key) per observation [P] (float32), once a forward has run through <see cref="Layer"/>.</summary>
    public Tensor LogShares => _logShares ?? throw new InvalidOperationException($"No forward has run through layer {Layer} while the probe was recorded.");

    /// <summary>
    /// Called by layer <paramref name="layer"/>'s attention with its rotated queries q [B, T, h, d] and keys
    /// k [B, kv, S, d] (no cache: S = T).
    /// </summary>
    public void Observe(int layer, Tensor q, Tensor k)
    {
        if (layer != Layer) return;
        using var scope = NewDisposeScope();
        long heads = q.size(2), kvHeads = k.size(1), d = q.size(3), s = k.size(2);
        if (Head >= heads) throw new ArgumentOutOfRangeException(nameof(Head), Head, $"Layer {layer} has {heads} heads.");
        var device = q.device;
        var rows = tensor(_rows, device: device);
        var queries = tensor(_queries, device: device);
        var picked = q.select(2, Head).index([TensorIndex.Tensor(rows), TensorIndex.Tensor(queries)]); // [P, d]
        var keys = k.select(1, Head / (heads / kvHeads)).index_select(0, rows);                          // [P, S, d]
        var scores = keys.bmm(picked.unsqueeze(2)).squeeze(2).to(ScalarType.Float32).div(Math.Sqrt(d)); // [P, S]
        var later = arange(s, device: device).unsqueeze(0).gt(queries.unsqueeze(1));                    // [P, S]: causal
        scores = scores.masked_fill(later, float.NegativeInfinity);
        var logShares = log_softmax(scores, 1).gather(1, tensor(_keys, device: device).unsqueeze(1)).squeeze(1); // [P]
        _logShares?.Dispose();
        _logShares = logShares.DetachFromDisposeScope();
    }

    public void Dispose() => _logShares?.Dispose();

    sealed class Restore(AttentionProbe? previous) : IDisposable
    {
        public void Dispose() => Active.Value = previous;
    }
}
