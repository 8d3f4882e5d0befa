using TorchSharp;
using static TorchSharp.torch;

namespace MiniGemini.Modeling;

/// <summary>Builds the boolean attention mask from causality and a key padding mask.</summary>
internal static class AttentionMask
{
    /// <summary>
    /// The mask for T queries at key positions past..past+T−1 over S = past + T keys, or null when SDPA's own
    /// <c>is_causal</c> (T &gt; 1, no history, no padding) or no mask at all (T = 1, no padding) says the same.
    /// </summary>
    /// <param name="keyMask">[B, S], nonzero = a real token; null = no padding.</param>
    /// <param name="queries">T, the new tokens.</param>
    /// <param name="past">Positions already in the cache.</param>
    /// <param name="explicitCausal">Materialise the causal mask even where <c>is_causal</c> would do (eager attention).</param>
    /// <param name="device">Where the mask lives.</param>
    public static Tensor? Build(Tensor? keyMask, long queries, long past, bool explicitCausal, Device device)
    {
        bool causal = queries > 1;
        if (keyMask is null && !(causal && (past > 0 || explicitCausal))) return null;
        using var scope = NewDisposeScope();
        long keys = past + queries;
        // Key j is visible to query i when j ≤ past + i.
        var allowed = causal ? ones(queries, keys, ScalarType.Bool, device).tril(past).view(1, 1, queries, keys) : null;
        if (keyMask is not null)
        {
            var real = keyMask.ne(Scalars.Zero).view(keyMask.shape[0], 1, 1, keys); // [B, 1, 1, S]
            allowed = allowed is null ? real : allowed.logical_and(real);
            // A padding query with no real token at or before it sees nothing; let it see everything instead of
            // producing NaN (its output is never used).
            allowed = allowed.logical_or(allowed.any(-1, keepdim: true).logical_not());
        }
        return allowed!.MoveToOuterDisposeScope();
    }
}
