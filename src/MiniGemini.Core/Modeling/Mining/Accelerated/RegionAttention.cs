using TorchSharp;
using static TorchSharp.torch;

namespace MiniGemini.Modeling;

/// <summary>
/// The attention at the heart of the fast path, over the HR map as it comes (NCHW, never rearranged). For each token t
/// with folded query ũₜ ∈ R^Da, centred (Σₖ ũₜₖ = 0), and score offset cₜ, over the HR positions i of its region:
/// score_i = ũₜ·x̂ᵢ + cₜ = rᵢ(ũₜ·xᵢ) + cₜ with rᵢ = 1/√(varᵢ + eps) from the LayerNorm statistics of xᵢ (biased
/// variance; the mean drops out against the centred ũ); p = softmax(nan_to_num(score)); result Σ pᵢx̂ᵢ =
/// Σ (pᵢrᵢ) xᵢ − (Σ pᵢrᵢμᵢ)·1. x̂ is never materialised.
/// </summary>
internal static class RegionAttention
{
    /// <summary>
    /// maps <c>[N, Da, Rows·s, Cols·s]</c>, queries <c>[N, T, Da + 1 (+ padding)]</c> = <c>[ũ | c | …]</c> →
    /// <c>[N, T, Da]</c> in the queries' dtype: Σ pᵢx̂ᵢ, plus, on the tensor-operation path, a per-token constant in
    /// every channel (−Σ pᵢrᵢμᵢ is left out), which a consumer with channel-centred weights ignores. The CPU kernel runs
    /// for CPU maps of float32, bfloat16 and float16, tensor operations elsewhere (<paramref name="backend"/>). With
    /// <paramref name="halfScale"/> the map is <c>[N, Da, 2·Rows·s, 2·Cols·s]</c> and the attention runs over its bilinear
    /// 1/2 downsample (MGM's HD global view), which the CPU kernel computes as it reads instead of storing it.
    /// </summary>
    public static Tensor Run(Tensor map, Tensor queries, RegionGrid grid, double eps, RegionBackend backend, FoldedWeights constants, bool halfScale = false)
    {
        using (var scope = NewDisposeScope())
            if (KernelMap(map, backend) is { } kernelMap)
            {
                var (u, c) = Split(queries, map.shape[1]);
                return RegionAttentionKernel.Run(kernelMap, u, c, grid, eps, halfScale).to(queries.dtype).MoveToOuterDisposeScope();
            }
        if (!halfScale) return WithTensorOps(map, queries, grid, eps, constants.BlockMask(grid));
        using var downsampled = HalfScale(map, constants);
        return WithTensorOps(downsampled, queries, grid, eps, constants.BlockMask(grid));
    }

    /// <summary>
    /// <see cref="Run"/> twice over the same maps: for <paramref name="queries"/> on <paramref name="grid"/>, and with
    /// halfScale for <paramref name="halfQueries"/> on <paramref name="halfGrid"/>, which covers the same map at half
    /// the resolution with the same block (MGM-HD: the 2×2 crops as one grid, and the global view). The CPU kernel
    /// serves both in one pair of sweeps over the map (<see cref="RegionAttentionKernel.RunWithHalfScale"/>).
    /// </summary>
    public static (Tensor Full, Tensor Half) RunWithHalfScale(Tensor map, Tensor queries, RegionGrid grid,
        Tensor halfQueries, RegionGrid halfGrid, double eps, RegionBackend backend, FoldedWeights constants)
    {
        using (var scope = NewDisposeScope())
            if (KernelMap(map, backend) is { } kernelMap)
            {
                var (u, c) = Split(queries, map.shape[1]);
                var (halfU, halfC) = Split(halfQueries, map.shape[1]);
                var (full, half) = RegionAttentionKernel.RunWithHalfScale(kernelMap, u, c, grid, halfU, halfC, halfGrid, eps);
                return (full.to(queries.dtype).MoveToOuterDisposeScope(), half.to(halfQueries.dtype).MoveToOuterDisposeScope());
            }
        return (Run(map, queries, grid, eps, backend, constants), Run(map, halfQueries, halfGrid, eps, backend, constants, halfScale: true));
    }

    /// <summary>
    /// The map the CPU kernel reads, or null where tensor operations run. Float32 and bfloat16 maps are read as they
    /// are; float16 maps, and maps whose rows are not contiguous as NCHW, after one copy to float32 NCHW: one copy, then
    /// the kernel, is far faster than the tensor operations on a CPU (docs/benchmarks.md#real-sizes, "Encode"), and
    /// more accurate in half precision.
    /// </summary>
    static Tensor? KernelMap(Tensor map, RegionBackend backend)
    {
        if (backend != RegionBackend.Auto) return null;
        if (RegionAttentionKernel.Supports(map)) return map;
        return map.device_type == DeviceType.CPU && map.dtype is ScalarType.Float32 or ScalarType.BFloat16 or ScalarType.Float16
            ? empty(map.shape, ScalarType.Float32).copy_(map)                                       // [N, Da, H, W], NCHW
            : null;
    }

    /// <summary><c>[ũ | c | …]</c> → u <c>[N, T, Da]</c> and c <c>[N, T]</c>, in float32, the kernel's precision.</summary>
    static (Tensor U, Tensor C) Split(Tensor queries, long channels) =>
        (queries.narrow(-1, 0, channels).to(ScalarType.Float32), queries.select(-1, channels).to(ScalarType.Float32)); // [N, T, Da], [N, T]

    /// <summary>
    /// Any device and dtype, in 18 tensor operations for one image and 13 per further one: each costs host time
    /// (TorchSharp call, dispatch, kernel launch), during which a GPU that has finished its work waits. Each block row
    /// of the map is one [Da, s·W] matrix view, so the dot products and the weighted sums are two batched matrix
    /// products over views of the map (no copy of it); they compute every token against the whole block row, Cols×
    /// the needed work, which accelerators absorb easily, and <paramref name="blockMask"/> keeps each token's softmax
    /// to its own block. The map is read three times: for the variances and by each product; these reads, not the
    /// arithmetic, set the time on an accelerator (docs/benchmarks.md).
    /// ũ·x comes from the raw map, so it keeps the dtype's relative precision of |x|·Σ|ũ| (as the reference's x − μ
    /// does of |x|); only positions constant across channels at a large value, where r = 1/√eps, amplify that.
    /// Scores and softmax are float32 (float64 for a float64 map); the products run in the map's dtype.
    /// </summary>
    static Tensor WithTensorOps(Tensor map, Tensor queries, RegionGrid grid, double eps, Tensor blockMask)
    {
        using var scope = NewDisposeScope();
        var scoreType = map.dtype == ScalarType.Float64 ? ScalarType.Float64 : ScalarType.Float32;
        long images = map.shape[0], channels = map.shape[1], rows = grid.Rows, cols = grid.Cols, span = grid.Block * grid.Width;
        if (map.stride(3) != 1 || map.stride(2) != grid.Width) map = map.contiguous();
        // var_mean, not var: TorchSharp's var(dim) also reduces the whole tensor first (one more pass over the map).
        var (variance, _) = map.var_mean(1, unbiased: false);                               // [N, H, W]
        using var epsilon = eps.ToScalar();
        var rstd = TensorHelpers.Cast(variance, scoreType).add_(epsilon, Scalars.One).rsqrt_();
        var results = new Tensor[images];
        for (long n = 0; n < images; n++)
        {
            var blockRows = map.as_strided([rows, channels, span], [span, map.stride(1), 1], map.storage_offset() + n * map.stride(0)); // [Rows, Da, s·W]
            long tokenStride = queries.stride(1), offset = queries.storage_offset() + n * queries.stride(0);
            var u = queries.as_strided([rows, cols, channels], [cols * tokenStride, tokenStride, 1], offset);     // [Rows, Cols, Da]
            var c = queries.as_strided([rows, cols, 1], [cols * tokenStride, tokenStride, 1], offset + channels); // [Rows, Cols, 1]
            var r = rstd.as_strided([rows, 1, span], [span, span, 1], rstd.storage_offset() + n * rstd.stride(0)); // [Rows, 1, s·W]
            var scores = c.addcmul(u.bmm(blockRows), r, Scalars.One);                        // [Rows, Cols, s·W], r(ũ·x) + c
            scores.nan_to_num_().PlusInPlace(blockMask);                                     // −∞ outside each token's block
            var weights = scores.softmax(-1).mul_(r);                                        // pᵢrᵢ
            results[n] = TensorHelpers.Cast(weights, map.dtype).bmm(blockRows.transpose(1, 2)); // [Rows, Cols, Da]
        }
        var sums = images == 1 ? results[0] : stack(results);
        return TensorHelpers.Cast(sums.view(images, grid.Tokens, channels), queries.dtype).MoveToOuterDisposeScope(); // [N, T, Da]
    }

    /// <summary>
    /// MGM's bilinear 1/2 downsample (<see cref="PatchInfoMining.GlobalMap"/>), without its float32 round trip where
    /// that changes nothing: at scale 1/2 (align_corners=False) each output is the mean of a 2×2 cell. For 16-bit maps
    /// it is one matrix product: map rows 2i and 2i+1 side by side, <c>[2W]</c>, times a <c>[2W, W/2]</c> matrix of ¼
    /// (<see cref="FoldedWeights.HalfScalePool"/>), accumulated in float32 and rounded once. That gives the reference's
    /// values except where its float32 interpolation rounds twice and lands on the other side of a 16-bit rounding
    /// boundary (a few elements in 10⁸ at MGM-HD size, one ulp each, the product nearer to the exact mean in the cases
    /// seen). It reads the map once, at memory speed, where average pooling and interpolation over an NCHW map of 2880
    /// channels are several times slower (docs/benchmarks.md). Float32 and float64 maps take the reference's path.
    /// </summary>
    internal static Tensor HalfScale(Tensor map, FoldedWeights constants)
    {
        if (map.dtype is not (ScalarType.BFloat16 or ScalarType.Float16)) return PatchInfoMining.GlobalMap(map, 2);
        using var scope = NewDisposeScope();
        long n = map.shape[0], channels = map.shape[1], height = map.shape[2], width = map.shape[3];
        var rowPairs = map.reshape(n * channels * height / 2, 2 * width);                     // [N·Da·H/2, 2W]
        var pooled = rowPairs.matmul(constants.HalfScalePool(width, map.dtype));              // [N·Da·H/2, W/2]
        return pooled.view(n, channels, height / 2, width / 2).MoveToOuterDisposeScope();     // [N, Da, H/2, W/2]
    }
}
