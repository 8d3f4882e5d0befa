using TorchSharp;
using static TorchSharp.torch;

namespace MiniGemini.Modeling;

/// <summary>
/// <see cref="FastMining.Mine"/> on the tensor-operation path — query LayerNorm and folded product, the attention of
/// <see cref="RegionAttention"/> over the NCHW map, the value product and the residual — as one TorchScript function
/// compiled at run time (<c>torch.jit.compile</c>): one native call per grid instead of ~20 TorchSharp calls, each
/// with its host time and tensor handles, during which a GPU that has finished its part waits; where libtorch's fuser
/// runs (GPUs) it may also join the elementwise chains around the softmax.
/// </summary>
/// <remarks>
/// The script does the eager path's ops in the same order and dtypes, so without a fuser (CPUs) its result is the
/// eager one bit for bit. Its products with a bias are a product and an addition, as TorchSharp's <c>linear</c>
/// computes them for a batch of rows (libtorch's <c>linear</c> adds the bias before rounding to a 16-bit dtype).
/// Where the eager path works in place the script does not, because TorchScript's fuser leaves ops that write in
/// place alone. The script reads no sizes of its own: the weights, the block mask and the grid are arguments, so one
/// compiled function serves every size, dtype and device, and loads and moves of the weights are seen.
/// </remarks>
internal sealed class CompiledMining : IDisposable
{
    const string Function = "mine";

    /// <summary>The script; TorchScript wants the source to end with a newline.</summary>
    internal const string Source = """
        def mine(lr: Tensor, map: Tensor, norm_weight: Tensor, norm_bias: Tensor, norm_eps: float,
                 queries_weight: Tensor, queries_bias: Tensor, values_weight: Tensor, values_bias: Tensor,
                 block_mask: Tensor, rows: int, cols: int, block: int, eps: float) -> Tensor:
            images = map.size(0)
            channels = map.size(1)
            span = block * cols * block
            map = map.contiguous()
            normalized = torch.layer_norm(lr, [lr.size(-1)], norm_weight, norm_bias, norm_eps)
            queries = normalized.matmul(queries_weight.t()) + queries_bias                # [N, T, Da + 1 + pad]: [ũ | c | 0…]
            variance, mean = torch.var_mean(map, [1], unbiased=False)                     # [N, H, W]
            variance = variance.double() if map.element_size() == 8 else variance.float() # scores in float32, float64 maps in float64
            rstd = (variance + eps).rsqrt()
            sums: List[Tensor] = []
            for n in range(images):
                block_rows = map[n].view(channels, rows, span).transpose(0, 1)            # [Rows, Da, s·W]
                u = queries[n].narrow(1, 0, channels).view(rows, cols, channels)          # [Rows, Cols, Da]
                c = queries[n].narrow(1, channels, 1).view(rows, cols, 1)                 # [Rows, Cols, 1]
                r = rstd[n].view(rows, 1, span)                                           # [Rows, 1, s·W]
                scores = torch.addcmul(c, u.bmm(block_rows), r).nan_to_num() + block_mask # r(ũ·x) + c, −∞ outside each token's block
                weights = (scores.softmax(-1) * r).to(map.dtype)                          # pᵢrᵢ
                sums.append(weights.bmm(block_rows.transpose(1, 2)))                      # [Rows, Cols, Da]
            attended = sums[0].unsqueeze(0) if images == 1 else torch.stack(sums)
            attended = attended.view(images, rows * cols, channels).to(queries.dtype)      # [N, T, Da]
            return attended.matmul(values_weight.t()) + values_bias + lr                  # [N, T, D]

        """;

    readonly jit.CompilationUnit _unit;

    CompiledMining(jit.CompilationUnit unit) => _unit = unit;

    /// <summary>Compiles <see cref="Source"/>.</summary>
    public static CompiledMining Compile() => FromSource(Source);

    /// <summary>A function from a script of one's own with <see cref="Source"/>'s signature (tests).</summary>
    internal static CompiledMining FromSource(string source) => new(jit.compile(source));

    /// <summary>
    /// Whether the compiled function is the default for a map: on accelerators, which wait on the host between the
    /// eager path's calls. On a CPU the kernel runs (float32 and 16-bit maps) or, for float64, the eager tensor operations.
    /// </summary>
    public static bool IsDefaultFor(Tensor map) => map.device_type != DeviceType.CPU;

    /// <summary>LR + mined for tokens <c>[N, Rows·Cols, D]</c> (row-major) over maps <c>[N, Da, Rows·s, Cols·s]</c>.</summary>
    public Tensor Mine(PatchInfoMining mining, Tensor lr, Tensor map, RegionGrid grid)
    {
        var norm = mining.Query.norm;
        var folded = mining.Folded;
        return _unit.invoke<Tensor>(Function, lr, map, norm.weight!, norm.bias!, norm.eps,
            folded.Queries, folded.QueriesBias, folded.Values, folded.ValuesBias, folded.BlockMask(grid),
            grid.Rows, grid.Cols, grid.Block, mining.Key.norm.eps);
    }

    /// <summary>Frees the compiled function.</summary>
    public void Dispose() => _unit.Dispose();
}
