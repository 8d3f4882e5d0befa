namespace MiniGemini.Modeling;

/// <summary>Which formulation of patch info mining an eval-mode <see cref="PatchInfoMining"/> runs. Both give the same answer.</summary>
internal enum MiningImplementation
{
    /// <summary>
    /// The exact algebraic rewrite (default, in Accelerated/): keys and values are never projected per HR feature.
    /// Each token's query is mapped once into HR-feature space, the attention runs over the LayerNorm-normalised HR
    /// features read in place from the NCHW map, and the attended mean is projected once. About 60× fewer FLOPs and
    /// no copy of the map.
    /// </summary>
    Fast,

    /// <summary>
    /// MGM's literal <c>unified_resampler</c>, as <see cref="PatchInfoMining"/> writes it out: the HR map is
    /// rearranged into regions, every HR feature is projected to a key and a value, then softmax(q·kᵀ/√D)·v. The
    /// verification baseline.
    /// </summary>
    Reference,
}
