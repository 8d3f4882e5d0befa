using static TorchSharp.torch;

namespace MiniGemini.Mining;

/// <summary>
/// MGM's patch info mining transcribed literally (<c>mgm_arch.py</c> <c>unified_resampler</c> and the mining part of
/// <c>encode_images</c>): every HR feature is projected to a key and a value. The verification baseline.
/// </summary>
internal static class ReferenceMining
{
    /// <summary>LR + mined features in output token order (<c>[global, crop00, crop01, …]</c> per image).</summary>
    public static Tensor Encode(PatchInfoMining mining, Tensor lrFeatures, Tensor hrMap, ViewLayout layout)
    {
        using var scope = NewDisposeScope();
        long batch = layout.Batch, tokens = layout.TokensPerView;
        var crops = TokenExtension.Crops(lrFeatures, layout);
        var hrCrops = layout.Grid > 1 ? TokenExtension.SplitCrops(hrMap, layout.Grid) : hrMap;
        var mined = crops + UnifiedResampler(mining, crops, hrCrops);                    // [B·g², P², D]
        mined = mined.reshape(batch, layout.Grid * layout.Grid * tokens, -1);             // [B, g²·P², D]
        if (layout.Global)
        {
            var globals = TokenExtension.Globals(lrFeatures, layout);
            var hrGlobal = TokenExtension.GlobalMap(hrMap, layout.Grid);
            mined = cat([globals + UnifiedResampler(mining, globals, hrGlobal), mined], dim: 1); // [B, (1+g²)·P², D]
        }
        return mined.MoveToOuterDisposeScope();
    }

    /// <summary>The attended HR information per LR token, <c>[N, P², D]</c> (MGM returns it beside the unchanged LR features).</summary>
    public static Tensor UnifiedResampler(PatchInfoMining mining, Tensor images, Tensor imagesAux)
    {
        using var scope = NewDisposeScope();
        long n = imagesAux.shape[0], channels = imagesAux.shape[1];
        long patchNum = (long)Math.Round(Math.Sqrt(images.shape[1]));
        long patchSize = imagesAux.shape[^1] / patchNum;
        var aux = imagesAux.permute(0, 2, 3, 1)                                   // [N, H, W, Da]
            .reshape(n, patchNum, patchSize, patchNum, patchSize, channels)      // [N, P, s, P, s, Da]
            .permute(0, 1, 3, 2, 4, 5)                                            // [N, P, P, s, s, Da]
            .reshape(n, patchNum * patchNum, patchSize * patchSize, channels)     // [N, P², s², Da]
            .contiguous();
        var query = mining.Query.call(images);                                    // [N, P², D]
        var key = mining.Key.call(aux);                                           // [N, P², s², D]
        var value = mining.Value.call(aux);                                       // [N, P², s², D]
        var attention = query.unsqueeze(2).matmul(key.transpose(-1, -2) / Math.Sqrt(key.shape[^1])); // [N, P², 1, s²]
        attention = attention.nan_to_num();
        return attention.softmax(-1).matmul(value).mean([2]).MoveToOuterDisposeScope(); // [N, P², D]
    }
}
