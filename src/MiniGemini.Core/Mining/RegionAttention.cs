using TorchSharp;
using static TorchSharp.torch;

namespace MiniGemini.Mining;

/// <summary>
/// The attention at the heart of the fast path, over the HR map as it comes (NCHW, never rearranged). For each token t
/// with folded query uₜ ∈ R^Da and score offset cₜ, over the HR positions i of its region:
/// score_i = uₜ·x̂ᵢ + cₜ = rᵢ(uₜ·xᵢ − μᵢ Σuₜ) + cₜ with μᵢ, rᵢ = 1/√(varᵢ + eps) the LayerNorm statistics of xᵢ
/// (biased variance); p = softmax(nan_to_num(score)); result Σ pᵢx̂ᵢ = Σ (pᵢrᵢ) xᵢ − Σ pᵢrᵢμᵢ. x̂ is never materialised.
/// </summary>
internal static class RegionAttention
{
    /// <summary>
    /// maps <c>[N, Da, Rows·s, Cols·s]</c>, u <c>[N, T, Da]</c>, c <c>[N, T]</c> → <c>[N, T, Da]</c> in u's dtype. The CPU
    /// kernel runs for float32 and half-precision CPU maps, tensor operations elsewhere (<paramref name="backend"/>). With
    /// <paramref name="halfScale"/> the map is <c>[N, Da, 2·Rows·s, 2·Cols·s]</c> and the attention runs over its bilinear
    /// 1/2 downsample (MGM's HD global view), which the CPU kernel computes as it reads instead of storing it.
    /// </summary>
    public static Tensor Run(Tensor map, Tensor u, Tensor c, RegionGrid grid, double eps, RegionBackend backend, bool halfScale = false)
    {
        using var scope = NewDisposeScope();
        if (backend != RegionBackend.TensorOps)
        {
            // Half-precision CPU maps are read in float32: a copy, then the kernel, is far faster than the tensor
            // operations in half precision on a CPU (and more accurate).
            var kernelMap = map.device_type == DeviceType.CPU && map.dtype is ScalarType.BFloat16 or ScalarType.Float16
                ? map.to(ScalarType.Float32) : map;
            if (RegionAttentionKernel.Supports(kernelMap))
                return RegionAttentionKernel.Run(kernelMap, u, c, grid, eps, halfScale).to(u.dtype).MoveToOuterDisposeScope();
            if (backend == RegionBackend.CpuKernel)
                throw new InvalidOperationException($"The CPU mining kernel needs a float32 CPU map with unit stride along W; got {map.dtype} on {map.device}.");
        }
        var source = halfScale ? TokenExtension.GlobalMap(map, 2) : map;
        return WithTensorOps(source, u, c, grid, eps).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Any device and dtype. Each block row of the map is one [Da, s·W] matrix view, so the dot products and the
    /// weighted sums are two batched matrix products over views of the map (no copy of it); they compute every token
    /// against the whole block row, Cols× the needed work, which accelerators absorb easily. u·x − μΣu comes from the
    /// raw map, so it keeps the dtype's relative precision of |x|·Σ|u| (as the reference's x − μ does of |x|); only
    /// positions constant across channels at a large value, where r = 1/√eps, amplify that.
    /// </summary>
    static Tensor WithTensorOps(Tensor map, Tensor u, Tensor c, RegionGrid grid, double eps)
    {
        using var scope = NewDisposeScope();
        var scoreType = map.dtype == ScalarType.Float64 ? ScalarType.Float64 : ScalarType.Float32;
        long rows = grid.Rows, cols = grid.Cols, s = grid.Block, width = grid.Width, channels = map.shape[1];
        var (variance, mean) = map.var_mean(1, unbiased: false);                            // [N, H, W]
        var mus = Regions(mean.to(scoreType), grid);                                         // [N, Rows, Cols, s, s]
        var rstds = Regions(variance.to(scoreType).add_(eps).rsqrt_(), grid);
        var uSums = u.sum(-1, type: scoreType).view(-1, rows, cols, 1, 1);                   // [N, Rows, Cols, 1, 1]
        var offsets = c.to(scoreType).view(-1, rows, cols, 1, 1);
        var results = new List<Tensor>();
        for (long n = 0; n < map.shape[0]; n++)
        {
            var x = map[n];                                                                  // [Da, H, W]
            if (x.stride(2) != 1 || x.stride(1) != width) x = x.contiguous();
            var blockRows = x.as_strided([rows, channels, s * width], [s * width, x.stride(0), 1], x.storage_offset()); // [Rows, Da, s·W]
            var un = u[n].to(map.dtype).view(rows, cols, channels);                          // [Rows, Cols, Da]
            var dots = un.bmm(blockRows)                                                     // [Rows, Cols, s·W]
                .view(rows, cols, s, cols, s).diagonal(0, 1, 3)                              // [Rows, s, s, Cols]
                .permute(0, 3, 1, 2).to(scoreType);                                          // [Rows, Cols, s, s]
            var (mu, rstd) = (mus[n], rstds[n]);
            var scores = offsets[n].addcmul(rstd, dots.addcmul(mu, uSums[n], -1), 1);       // r(u·x − μΣu) + c
            var p = scores.nan_to_num_().reshape(rows, cols, s * s).softmax(-1).view(rows, cols, s, s);
            var weights = p.mul_(rstd);                                                      // pᵢrᵢ
            var meanShift = (weights * mu).sum([2, 3]);                                      // [Rows, Cols]

            // Block-diagonal weights: token (r, c) weighs only its own s×s block of block row r.
            var blockWeights = zeros([rows, s, cols, s, cols], map.dtype, map.device);      // [Rows, a, c', b, c]
            blockWeights.diagonal(0, 2, 4).copy_(weights.permute(0, 2, 3, 1));
            var sums = blockRows.bmm(blockWeights.view(rows, s * width, cols));             // [Rows, Da, Cols]
            results.Add(sums.to(scoreType).sub_(meanShift.unsqueeze(1)).permute(0, 2, 1)); // [Rows, Cols, Da]
        }
        return stack(results).view(-1, grid.Tokens, channels).to(u.dtype).MoveToOuterDisposeScope(); // [N, T, Da]
    }

    /// <summary>Per-position maps <c>[N, H, W]</c> → per-token regions <c>[N, Rows, Cols, s, s]</c>.</summary>
    static Tensor Regions(Tensor positions, RegionGrid grid) =>
        positions.view(-1, grid.Rows, grid.Block, grid.Cols, grid.Block).permute(0, 1, 3, 2, 4);
}
