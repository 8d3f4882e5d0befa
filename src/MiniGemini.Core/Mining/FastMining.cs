using static TorchSharp.torch;
using static TorchSharp.torch.nn.functional;

namespace MiniGemini.Mining;

/// <summary>
/// Patch info mining rewritten so that no HR feature is ever projected. With x̂ᵢ the LayerNorm-normalised HR feature
/// (without affine), (γ, β) the LayerNorm affine and (W, b) the Linear of the key / value projectors:
/// <list type="bullet">
/// <item>score_i = q·(W_k(γ_k⊙x̂ᵢ + β_k) + b_k)/√D = u·x̂ᵢ + c with u = γ_k ⊙ W_kᵀq/√D and c = q·(W_kβ_k + b_k)/√D:
/// one [D→Da] product per token instead of s² [Da→D] ones;</item>
/// <item>Σ pᵢ(W_v(γ_v⊙x̂ᵢ + β_v) + b_v) = W_v(γ_v ⊙ Σ pᵢx̂ᵢ) + (W_vβ_v + b_v), since Σ pᵢ = 1: one value projection per token.</item>
/// </list>
/// Everything that depends on the weights alone is folded once (<see cref="FoldedWeights"/>): the query projection into
/// u and c, so that a call is one LayerNorm and one product before the attention and one product after it.
/// c is kept although it cancels in the softmax, so that nan_to_num sees the reference's scores. The key and value
/// projectors normalise the same HR features with the same LayerNorm(Da) eps, so one x̂ serves both.
/// The attention itself (<see cref="RegionAttention"/>) reads the NCHW map in place.
/// </summary>
internal static class FastMining
{
    /// <summary>LR + mined features in output token order (<c>[global, crop00, crop01, …]</c> per image).</summary>
    public static Tensor Encode(PatchInfoMining mining, Tensor lrFeatures, Tensor hrMap, ViewLayout layout, RegionBackend backend)
    {
        using var scope = NewDisposeScope();
        var crops = TokenExtension.Crops(lrFeatures, layout);
        Tensor mined;
        if (layout.Grid == 1)
            mined = Mine(mining, crops, hrMap, layout.CropGrid, backend);                        // [B, P², D]
        else
        {
            // The crops tile the HR map exactly, so all of an image's crops are one finer grid over the whole map.
            var picture = TokenExtension.CropsToPicture(crops, layout);                           // [B, (gP)², D]
            var minedPicture = Mine(mining, picture, hrMap, layout.PictureGrid, backend);
            mined = TokenExtension.PictureToCrops(minedPicture, layout);                          // [B, g²·P², D]
        }
        if (layout.Global)
        {
            var globals = TokenExtension.Globals(lrFeatures, layout);
            // At g = 2 the downsample is read on the fly from the full map rather than stored (425 MB at MGM-HD size).
            var global = layout.Grid == 2
                ? Mine(mining, globals, hrMap, layout.CropGrid, backend, halfScale: true)
                : Mine(mining, globals, TokenExtension.GlobalMap(hrMap, layout.Grid), layout.CropGrid, backend);
            mined = cat([global, mined], dim: 1);                                                 // [B, (1+g²)·P², D]
        }
        return mined.MoveToOuterDisposeScope();
    }

    /// <summary>
    /// LR + mined for tokens <c>[N, Rows·Cols, D]</c> (row-major) over maps <c>[N, Da, Rows·s, Cols·s]</c>, or over the
    /// bilinear 1/2 downsample of maps twice that size (<paramref name="halfScale"/>).
    /// </summary>
    public static Tensor Mine(PatchInfoMining mining, Tensor lr, Tensor map, RegionGrid grid, RegionBackend backend, bool halfScale = false)
    {
        using var scope = NewDisposeScope();
        var folded = mining.Folded;
        var queryNorm = mining.Query.norm;
        var normalized = layer_norm(lr, [lr.shape[^1]], queryNorm.weight, queryNorm.bias, queryNorm.eps); // [N, T, D]
        var queries = linear(normalized, folded.Queries, folded.QueriesBias);                         // [N, T, Da + 1 + pad] = [ũ | c | 0…]
        var attended = RegionAttention.Run(map, queries, grid, mining.Key.norm.eps, backend, folded, halfScale); // [N, T, Da]
        return linear(attended, folded.Values, folded.ValuesBias).add_(lr).MoveToOuterDisposeScope(); // [N, T, D]
    }
}
