using static TorchSharp.torch;

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

    /// <summary>The crop views' LR features, <c>[B·g², P², D]</c> (the features themselves when there are no globals).</summary>
    public Tensor Crops(Tensor lrFeatures) => Global ? lrFeatures.narrow(0, 0, CropCount) : lrFeatures;

    /// <summary>The global views' LR features, <c>[B, P², D]</c>.</summary>
    public Tensor Globals(Tensor lrFeatures) => lrFeatures.narrow(0, CropCount, Batch);

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
}
