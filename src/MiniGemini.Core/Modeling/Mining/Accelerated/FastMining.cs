using System.Runtime.InteropServices;
using static TorchSharp.torch;
using static TorchSharp.torch.nn.functional;

namespace MiniGemini.Modeling;

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
    /// <summary>
    /// LR + mined features in output token order (<c>[global, crop00, crop01, …]</c> per image): the function
    /// <see cref="PatchInfoMining.Encode"/> writes out.
    /// </summary>
    public static Tensor Encode(PatchInfoMining mining, Tensor lrFeatures, Tensor hrMap, ViewLayout layout)
    {
        using var scope = NewDisposeScope();
        var backend = mining.Backend;
        var crops = layout.Crops(lrFeatures);
        var cropGrid = new RegionGrid(layout.Patches, layout.Patches, layout.Block);
        Tensor mined;
        Tensor? global = null;
        if (layout.Grid == 1)
            mined = Mine(mining, crops, hrMap, cropGrid, backend);                                // [B, P², D]
        else
        {
            // The crops tile the HR map exactly, so all of an image's crops are one finer grid over the whole map.
            var picture = CropsToPicture(crops, layout);                                          // [B, (gP)², D]
            var pictureGrid = new RegionGrid(layout.Grid * layout.Patches, layout.Grid * layout.Patches, layout.Block);
            Tensor minedPicture;
            if (layout.Global && layout.Grid == 2)
                // The global view is the map's 1/2 downsample: it is read from the full map on the fly, in the same
                // sweeps as the crops, rather than stored (425 MB at MGM-HD size) and read again.
                (minedPicture, global) = MineWithHalfScale(mining, picture, pictureGrid,
                    layout.Globals(lrFeatures), cropGrid, hrMap, backend);
            else
                minedPicture = Mine(mining, picture, hrMap, pictureGrid, backend);
            mined = PictureToCrops(minedPicture, layout);                                         // [B, g²·P², D]
        }
        if (layout.Global)
        {
            global ??= Mine(mining, layout.Globals(lrFeatures), PatchInfoMining.GlobalMap(hrMap, layout.Grid), cropGrid, backend);
            mined = cat([global, mined], dim: 1);                                                 // [B, (1+g²)·P², D]
        }
        return mined.MoveToOuterDisposeScope();
    }

    /// <summary>LR + mined for tokens <c>[N, Rows·Cols, D]</c> (row-major) over maps <c>[N, Da, Rows·s, Cols·s]</c>.</summary>
    public static Tensor Mine(PatchInfoMining mining, Tensor lr, Tensor map, RegionGrid grid, RegionBackend backend)
    {
        if (mining.CompiledFor(map) is { } compiled)
            try
            {
                return compiled.Mine(mining, lr, map, grid);
            }
            catch (ExternalException e)
            {
                mining.CompiledMiningFailed(e);                  // the op-by-op operations below compute the same function
            }
        using var scope = NewDisposeScope();
        var attended = RegionAttention.Run(map, Queries(mining, lr), grid, mining.Key.norm.eps, backend, mining.Folded); // [N, T, Da]
        return Values(mining, attended, lr).MoveToOuterDisposeScope();                              // [N, T, D]
    }

    /// <summary>
    /// <see cref="Mine"/> for <paramref name="lr"/> over the maps and for <paramref name="halfLr"/> over their bilinear 1/2
    /// downsample, which <paramref name="halfGrid"/> divides into blocks of the same size.
    /// </summary>
    static (Tensor Full, Tensor Half) MineWithHalfScale(PatchInfoMining mining, Tensor lr, RegionGrid grid,
        Tensor halfLr, RegionGrid halfGrid, Tensor map, RegionBackend backend)
    {
        if (mining.CompiledFor(map) is not null)
        {
            using var half = RegionAttention.HalfScale(map, mining.Folded);                      // [N, Da, H/2, W/2]
            return (Mine(mining, lr, map, grid, backend), Mine(mining, halfLr, half, halfGrid, backend));
        }
        using var scope = NewDisposeScope();
        var (attended, halfAttended) = RegionAttention.RunWithHalfScale(map, Queries(mining, lr), grid,
            Queries(mining, halfLr), halfGrid, mining.Key.norm.eps, backend, mining.Folded);     // [N, T, Da], [N, T/4, Da]
        return (Values(mining, attended, lr).MoveToOuterDisposeScope(), Values(mining, halfAttended, halfLr).MoveToOuterDisposeScope());
    }

    /// <summary>LR tokens <c>[N, T, D]</c> → <c>[N, T, Da + 1 + pad]</c> = <c>[ũ | c | 0…]</c>.</summary>
    static Tensor Queries(PatchInfoMining mining, Tensor lr)
    {
        var norm = mining.Query.norm;
        var folded = mining.Folded;
        var normalized = layer_norm(lr, [lr.shape[^1]], norm.weight, norm.bias, norm.eps);         // [N, T, D]
        return linear(normalized, folded.Queries, folded.QueriesBias);
    }

    /// <summary>Attended HR features <c>[N, T, Da]</c> → LR + mined <c>[N, T, D]</c>.</summary>
    static Tensor Values(PatchInfoMining mining, Tensor attended, Tensor lr)
    {
        var folded = mining.Folded;
        return linear(attended, folded.Values, folded.ValuesBias).PlusInPlace(lr);
    }

    /// <summary>Crop-major tokens <c>[B·g², P², D]</c> → one row-major grid over each whole picture <c>[B, (gP)², D]</c>.</summary>
    static Tensor CropsToPicture(Tensor crops, ViewLayout layout)
    {
        long b = layout.Batch, g = layout.Grid, p = layout.Patches;
        return crops.reshape(b, g, g, p, p, -1)        // [B, gi, gj, r, c, D]
            .permute(0, 1, 3, 2, 4, 5)                  // [B, gi, r, gj, c, D]
            .reshape(b, g * p * g * p, -1);             // [B, (gP)², D]
    }

    /// <summary>Inverse of <see cref="CropsToPicture"/>, with each image's crops concatenated: <c>[B, g²·P², D]</c>.</summary>
    static Tensor PictureToCrops(Tensor picture, ViewLayout layout)
    {
        long b = layout.Batch, g = layout.Grid, p = layout.Patches;
        return picture.reshape(b, g, p, g, p, -1)      // [B, gi, r, gj, c, D]
            .permute(0, 1, 3, 2, 4, 5)                  // [B, gi, gj, r, c, D]
            .reshape(b, g * g * p * p, -1);             // [B, g²·P², D]
    }
}
