using TorchSharp;
using static TorchSharp.torch;
using static TorchSharp.torch.nn.functional;

namespace MiniGemini.Modeling;

/// <summary>
/// The views of one batch as MGM's <c>encode_images</c> sees them. LR features arrive as
/// <c>[B·g² crops ; B globals]</c> (crops row-major per image, globals only with <see cref="Global"/>), each view a
/// <see cref="Patches"/>² token grid; the HR map is <c>[B, Da, g·h, g·w]</c> and each crop is one g×g tile of it.
/// </summary>
internal sealed record ViewLayout(long Batch, int Grid, bool Global, long Patches, long Block)
{
    public long CropCount => Batch * Grid * Grid;
    public long TokensPerView => Patches * Patches;
    /// <summary>Token grid of one crop (or of the whole picture when Grid is 1).</summary>
    public RegionGrid CropGrid => new(Patches, Patches, Block);
    /// <summary>All crops of an image as one grid over the full HR map: crop tiles line up with token blocks.</summary>
    public RegionGrid PictureGrid => new(Grid * Patches, Grid * Patches, Block);
}

/// <summary>MGM's visual token extension (HD): view bookkeeping shared by both mining implementations.</summary>
internal static class TokenExtension
{
    /// <summary>Checks the shapes of one <c>encode_images</c> call and describes its views.</summary>
    /// <exception cref="ArgumentException">Ranks, widths, view counts or grid sizes do not fit together.</exception>
    public static ViewLayout Describe(Tensor lrFeatures, Tensor hrMap, int grid, bool global, long hiddenSize, long auxHiddenSize)
    {
        const string Who = nameof(PatchInfoMining);
        if (grid < 1) throw new ArgumentOutOfRangeException(nameof(grid), grid, $"{Who}: image_grid must be at least 1.");
        if (lrFeatures.dim() != 3 || lrFeatures.shape[2] != hiddenSize)
            throw new ArgumentException($"{Who}: LR features must be [views, tokens, {hiddenSize}], got {TensorHelpers.Shape(lrFeatures.shape)}.", nameof(lrFeatures));
        if (hrMap.dim() != 4 || hrMap.shape[1] != auxHiddenSize)
            throw new ArgumentException($"{Who}: the HR map must be [B, {auxHiddenSize}, H, W], got {TensorHelpers.Shape(hrMap.shape)}.", nameof(hrMap));
        if (!TensorHelpers.SameDevice(lrFeatures.device, hrMap.device) || lrFeatures.dtype != hrMap.dtype)
            throw new ArgumentException($"{Who}: LR features ({lrFeatures.dtype} on {lrFeatures.device}) and the HR map ({hrMap.dtype} on {hrMap.device}) must share dtype and device.", nameof(hrMap));

        long batch = hrMap.shape[0];
        long views = batch * grid * grid + (global ? batch : 0);
        if (lrFeatures.shape[0] != views)
            throw new ArgumentException(
                $"{Who}: {batch} HR map(s) with image_grid {grid}{(global ? " and a global view" : "")} need {views} LR views " +
                $"([B·{grid * grid} crops ; {(global ? "B globals" : "no globals")}]), got {lrFeatures.shape[0]} ({TensorHelpers.Shape(lrFeatures.shape)}).", nameof(lrFeatures));

        long tokens = lrFeatures.shape[1];
        long patches = (long)Math.Round(Math.Sqrt(tokens));
        if (tokens < 1 || patches * patches != tokens)
            throw new ArgumentException($"{Who}: each LR view must be a square grid of tokens, got {tokens} tokens ({TensorHelpers.Shape(lrFeatures.shape)}).", nameof(lrFeatures));

        long height = hrMap.shape[2], width = hrMap.shape[3];
        long side = grid * patches;
        if (height != width || width % side != 0)
            throw new ArgumentException(
                $"{Who}: the HR map must be square with a side that is a multiple of image_grid × tokens per side = {grid} × {patches}, " +
                $"so that each LR token owns a whole block; got {height}×{width} ({TensorHelpers.Shape(hrMap.shape)}).", nameof(hrMap));
        return new ViewLayout(batch, grid, global, patches, width / side);
    }

    /// <summary>
    /// The global view's HR map: the whole map bilinearly downsampled by 1/g (<c>F.interpolate(scale_factor=1/g,
    /// align_corners=False)</c>) in float32, as MGM does, then back in the map's dtype.
    /// </summary>
    public static Tensor GlobalMap(Tensor hrMap, int grid)
    {
        using var scope = NewDisposeScope();
        var scale = 1.0 / grid;
        var resized = interpolate(hrMap.to(ScalarType.Float32), scale_factor: [scale, scale], mode: InterpolationMode.Bilinear, align_corners: false);
        return resized.to(hrMap.dtype).MoveToOuterDisposeScope(); // [B, Da, H/g, W/g]
    }

    /// <summary>The crop views' LR features, <c>[B·g², P², D]</c> (the features themselves when there are no globals).</summary>
    public static Tensor Crops(Tensor lrFeatures, ViewLayout layout) => layout.Global ? lrFeatures.narrow(0, 0, layout.CropCount) : lrFeatures;

    /// <summary>The global views' LR features, <c>[B, P², D]</c>.</summary>
    public static Tensor Globals(Tensor lrFeatures, ViewLayout layout) => lrFeatures.narrow(0, layout.CropCount, layout.Batch);

    /// <summary>Crop-major tokens <c>[B·g², P², D]</c> → one row-major grid over each whole picture <c>[B, (gP)², D]</c>.</summary>
    public static Tensor CropsToPicture(Tensor crops, ViewLayout layout)
    {
        long b = layout.Batch, g = layout.Grid, p = layout.Patches;
        return crops.reshape(b, g, g, p, p, -1)        // [B, gi, gj, r, c, D]
            .permute(0, 1, 3, 2, 4, 5)                  // [B, gi, r, gj, c, D]
            .reshape(b, g * p * g * p, -1);             // [B, (gP)², D]
    }

    /// <summary>Inverse of <see cref="CropsToPicture"/>, with each image's crops concatenated: <c>[B, g²·P², D]</c>.</summary>
    public static Tensor PictureToCrops(Tensor picture, ViewLayout layout)
    {
        long b = layout.Batch, g = layout.Grid, p = layout.Patches;
        return picture.reshape(b, g, p, g, p, -1)      // [B, gi, r, gj, c, D]
            .permute(0, 1, 3, 2, 4, 5)                  // [B, gi, gj, r, c, D]
            .reshape(b, g * g * p * p, -1);             // [B, g²·P², D]
    }

    /// <summary>MGM's split of the HR map into g×g row-major crops, <c>[B·g², Da, H/g, W/g]</c> (a copy).</summary>
    public static Tensor SplitCrops(Tensor hrMap, int grid)
    {
        long b = hrMap.shape[0], c = hrMap.shape[1], h = hrMap.shape[2] / grid, w = hrMap.shape[3] / grid;
        return hrMap.reshape(b, c, grid, h, grid, w)   // [B, Da, gi, h, gj, w]
            .permute(0, 2, 4, 1, 3, 5)                  // [B, gi, gj, Da, h, w]
            .reshape(b * grid * grid, c, h, w)          // [B·g², Da, h, w]
            .contiguous();
    }
}
