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
        var (keyNorm, key) = (mining.Key.norm, mining.Key.linear);
        var (valueNorm, value) = (mining.Value.norm, mining.Value.linear);
        double scale = 1.0 / Math.Sqrt(key.weight.shape[0]);

        var query = mining.Query.call(lr);                                                   // [N, T, D]
        var u = query.matmul(key.weight).mul_(keyNorm.weight * scale);                     // [N, T, Da]
        var keyBias = key.weight.matmul(keyNorm.bias!) + key.bias!;                          // [D]
        var c = query.matmul(keyBias).mul_(scale);                                           // [N, T]
        var attended = RegionAttention.Run(map, u, c, grid, keyNorm.eps, backend, halfScale); // [N, T, Da] = Σ pᵢ x̂ᵢ
        var valueBias = value.weight.matmul(valueNorm.bias!) + value.bias!;                  // [D]
        var mined = linear(attended.mul_(valueNorm.weight), value.weight, valueBias);       // [N, T, D]
        return lr.add(mined).MoveToOuterDisposeScope();
    }
}
