using TorchSharp;
using static TorchSharp.torch;

namespace MiniGemini.Modeling;

/// <summary>
/// MGM's <c>unified_resampler</c> (written out in <see cref="PatchInfoMining"/>) rewritten so that no HR feature is
/// projected, in plain autograd ops: the formulation train mode runs. With x̂ the LayerNorm-standardised HR feature,
/// the key is W_k(γ_k ⊙ x̂ + β_k) + b_k, so q·k = (W_kᵀq ⊙ γ_k)·x̂ plus a term constant per query, which softmax
/// ignores; and the attended value is W_v(γ_v ⊙ Σ a·x̂ + β_v) + b_v because the weights a sum to one. Cost per HR
/// feature: O(Da) instead of O(Da·D), and autograd keeps no key or value per HR feature.
/// </summary>
internal static class ReferenceMining
{
    /// <summary>The attended HR information per LR token, <c>[N, P², D]</c>, for LR <c>[N, P², D]</c> and HR maps <c>[N, Da, P·s, P·s]</c>.</summary>
    public static Tensor FactoredResampler(PatchInfoMining mining, Tensor images, Tensor imagesAux)
    {
        using var scope = NewDisposeScope();
        var (scores, standardised) = FactoredScores(mining, images, imagesAux);           // [N, P², s²], [N, P², s², Da]
        return AttendedValues(mining, scores, standardised).MoveToOuterDisposeScope();     // [N, P², D]
    }

    /// <summary>The second half of <see cref="FactoredResampler"/>: the value of the attended standardised HR features.</summary>
    public static Tensor AttendedValues(PatchInfoMining mining, Tensor scores, Tensor standardised)
    {
        using var scope = NewDisposeScope();
        var valueNorm = mining.Value.norm;
        var weights = scores.softmax(-1);                                                  // [N, P², s²]
        var pooled = weights.unsqueeze(2).matmul(standardised).squeeze(2);                 // [N, P², Da]
        return mining.Value.linear.call((pooled * valueNorm.weight!).Plus(valueNorm.bias!)).MoveToOuterDisposeScope(); // [N, P², D]
    }

    /// <summary>
    /// The attention scores of <see cref="FactoredResampler"/> before the softmax, <c>[N, P², s²]</c> (each LR token over
    /// the s×s HR features of its block, row-major), and the LayerNorm-standardised HR features <c>[N, P², s², Da]</c>.
    /// </summary>
    public static (Tensor Scores, Tensor Standardised) FactoredScores(PatchInfoMining mining, Tensor images, Tensor imagesAux)
    {
        using var scope = NewDisposeScope();
        long channels = imagesAux.shape[1];
        var aux = PatchInfoMining.Regions(images, imagesAux);                              // [N, P², s², Da]
        var (keyNorm, keyLinear) = (mining.Key.norm, mining.Key.linear);
        var standardised = nn.functional.layer_norm(aux, [channels], eps: keyNorm.eps);   // [N, P², s², Da]
        var query = mining.Query.call(images);                                            // [N, P², D]
        var folded = query.matmul(keyLinear.weight!) * keyNorm.weight!;                    // [N, P², Da]
        using var scale = Math.Sqrt(query.shape[^1]).ToScalar();
        var scores = standardised.matmul(folded.unsqueeze(-1)).squeeze(-1).div(scale).nan_to_num(); // [N, P², s²]
        return (scores.MoveToOuterDisposeScope(), standardised.MoveToOuterDisposeScope());
    }
}
