using TorchSharp;
using static TorchSharp.torch;

namespace MiniGemini.Modeling;

/// <summary>
/// MGM's patch info mining transcribed literally (<c>mgm_arch.py</c> <c>unified_resampler</c> and the mining part of
/// <c>encode_images</c>): every HR feature is projected to a key and a value. The verification baseline.
/// </summary>
internal static class ReferenceMining
{
    /// <summary>LR + mined features in output token order (<c>[global, crop00, crop01, …]</c> per image).</summary>
    public static Tensor Encode(PatchInfoMining mining, Tensor lrFeatures, Tensor hrMap, ViewLayout layout,
        Func<PatchInfoMining, Tensor, Tensor, Tensor> resampler)
    {
        using var scope = NewDisposeScope();
        long batch = layout.Batch, tokens = layout.TokensPerView;
        var crops = TokenExtension.Crops(lrFeatures, layout);
        var hrCrops = layout.Grid > 1 ? TokenExtension.SplitCrops(hrMap, layout.Grid) : hrMap;
        var mined = crops.Plus(resampler(mining, crops, hrCrops));                // [B·g², P², D]
        mined = mined.reshape(batch, layout.Grid * layout.Grid * tokens, -1);             // [B, g²·P², D]
        if (layout.Global)
        {
            var globals = TokenExtension.Globals(lrFeatures, layout);
            var hrGlobal = TokenExtension.GlobalMap(hrMap, layout.Grid);
            mined = cat([globals.Plus(resampler(mining, globals, hrGlobal)), mined], dim: 1); // [B, (1+g²)·P², D]
        }
        return mined.MoveToOuterDisposeScope();
    }

    /// <summary>The attended HR information per LR token, <c>[N, P², D]</c> (MGM returns it beside the unchanged LR features).</summary>
    public static Tensor UnifiedResampler(PatchInfoMining mining, Tensor images, Tensor imagesAux)
    {
        using var scope = NewDisposeScope();
        var aux = Regions(images, imagesAux).contiguous();                        // [N, P², s², Da]
        var query = mining.Query.call(images);                                    // [N, P², D]
        var key = mining.Key.call(aux);                                           // [N, P², s², D]
        var value = mining.Value.call(aux);                                       // [N, P², s², D]
        using var scale = Math.Sqrt(key.shape[^1]).ToScalar();
        var attention = query.unsqueeze(2).matmul(key.transpose(-1, -2).div(scale)); // [N, P², 1, s²]
        attention = attention.nan_to_num();
        return attention.softmax(-1).matmul(value).mean([2]).MoveToOuterDisposeScope(); // [N, P², D]
    }

    /// <summary>
    /// <see cref="UnifiedResampler"/> rewritten so that no HR feature is projected, in plain autograd ops (training).
    /// With x̂ the LayerNorm-standardised HR feature, the key is W_k(γ_k ⊙ x̂ + β_k) + b_k, so q·k = (W_kᵀq ⊙ γ_k)·x̂ plus a
    /// term constant per query, which softmax ignores; and the attended value is W_v(γ_v ⊙ Σ a·x̂ + β_v) + b_v because
    /// the weights a sum to one. Cost per HR feature: O(Da) instead of O(Da·D).
    /// </summary>
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
        var aux = Regions(images, imagesAux);                                                 // [N, P², s², Da]
        var (keyNorm, keyLinear) = (mining.Key.norm, mining.Key.linear);
        var standardised = nn.functional.layer_norm(aux, [channels], eps: keyNorm.eps);   // [N, P², s², Da]
        var query = mining.Query.call(images);                                            // [N, P², D]
        var folded = query.matmul(keyLinear.weight!) * keyNorm.weight!;                    // [N, P², Da]
        using var scale = Math.Sqrt(query.shape[^1]).ToScalar();
        var scores = standardised.matmul(folded.unsqueeze(-1)).squeeze(-1).div(scale).nan_to_num(); // [N, P², s²]
        return (scores.MoveToOuterDisposeScope(), standardised.MoveToOuterDisposeScope());
    }

    /// <summary>The HR map <c>[N, Da, P·s, P·s]</c> as the s×s block of each of the P² LR tokens, <c>[N, P², s², Da]</c>.</summary>
    static Tensor Regions(Tensor images, Tensor imagesAux)
    {
        long n = imagesAux.shape[0], channels = imagesAux.shape[1];
        long patchNum = (long)Math.Round(Math.Sqrt(images.shape[1]));
        long patchSize = imagesAux.shape[^1] / patchNum;
        return imagesAux.permute(0, 2, 3, 1)                                       // [N, H, W, Da]
            .reshape(n, patchNum, patchSize, patchNum, patchSize, channels)       // [N, P, s, P, s, Da]
            .permute(0, 1, 3, 2, 4, 5)                                             // [N, P, P, s, s, Da]
            .reshape(n, patchNum * patchNum, patchSize * patchSize, channels);     // [N, P², s², Da]
    }
}
