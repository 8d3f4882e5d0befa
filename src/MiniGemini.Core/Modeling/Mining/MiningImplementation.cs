namespace MiniGemini.Modeling;

/// <summary>Which formulation of patch info mining <see cref="PatchInfoMining"/> runs. Both give the same answer.</summary>
public enum MiningImplementation
{
    /// <summary>
    /// The exact algebraic rewrite (default): keys and values are never projected per HR feature. Each token's query
    /// is mapped once into HR-feature space, the attention runs over the LayerNorm-normalised HR features read in
    /// place from the NCHW map, and the attended mean is projected once. About 60× fewer FLOPs and no copy of the map.
    /// </summary>
    Fast,

    /// <summary>
    /// MGM's literal <c>unified_resampler</c>: the HR map is rearranged into regions, every HR feature is projected to
    /// a key and a value, then softmax(q·kᵀ/√D)·v. Kept for verification and as the benchmark baseline.
    /// </summary>
    Reference,
}
