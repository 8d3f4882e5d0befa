using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace MiniGemini.Modeling;

/// <summary>
/// What the fast path computes from the weights alone, once per set of weights instead of once per call (folded in
/// float64, rounded once to the weights' dtype). With x̂ the query LayerNorm's output (affine included):
/// <list type="bullet">
/// <item><see cref="Queries"/>: one Linear(D → Da + 1, padded) giving <c>[ũ | c | 0…]</c> per token, where
/// u = γ_k ⊙ W_kᵀq/√D, c = q·(W_kβ_k + b_k)/√D and q = W_q x̂ + b_q: the query, key and score scale folded into one
/// product. ũ = u − mean(u): centred over channels, ũ·x = u·x − μΣu for any HR feature x of mean μ, so the attention
/// needs no per-position mean. The width is padded to a multiple of 8 so that the ũ rows stay 16-byte aligned.</item>
/// <item><see cref="Values"/>: W_v·diag(γ_v) with each row centred, and bias W_vβ_v + b_v. A centred row ignores any
/// constant added to all channels of its input, so it maps Σ pᵢrᵢxᵢ straight to what W_v(γ_v ⊙ Σ pᵢx̂ᵢ) gives
/// (Σ pᵢx̂ᵢ = Σ pᵢrᵢxᵢ − (Σ pᵢrᵢμᵢ)·1).</item>
/// </list>
/// It also keeps the constants of the map shapes it has met: additive block masks (<see cref="BlockMask"/>) and the
/// matrices of the HD global view's 1/2 downsample (<see cref="HalfScalePool"/>).
/// It is tied to the parameter objects it was folded from; <see cref="PatchInfoMining"/> folds again when they are
/// replaced (<c>to()</c>) or reloaded.
/// </summary>
internal sealed class FoldedWeights : IDisposable
{
    readonly Tensor?[] _sources;
    readonly Dictionary<(long Cols, long Block), Tensor> _masks = [];
    readonly Dictionary<(long Width, ScalarType Type), Tensor> _pools = [];

    FoldedWeights(Tensor?[] sources, Tensor queries, Tensor queriesBias, Tensor values, Tensor valuesBias)
    {
        _sources = sources;
        (Queries, QueriesBias, Values, ValuesBias) = (queries, queriesBias, values, valuesBias);
    }

    /// <summary><c>[Da + 1 + pad, D]</c>: x̂ ↦ <c>[ũ | c | 0…]</c> (with <see cref="QueriesBias"/>).</summary>
    public Tensor Queries { get; }
    public Tensor QueriesBias { get; }
    /// <summary><c>[D, Da]</c>, rows centred: attended HR features ↦ mined (with <see cref="ValuesBias"/>).</summary>
    public Tensor Values { get; }
    public Tensor ValuesBias { get; }

    /// <summary>The width of a <see cref="Queries"/> output row: Da + 1 rounded up to a multiple of 8.</summary>
    public static long QueryWidth(long auxHidden) => (auxHidden + 1 + 7) / 8 * 8;

    /// <summary>Folds the weights of <paramref name="mining"/> (same device and dtype as they are).</summary>
    public static FoldedWeights Create(PatchInfoMining mining)
    {
        using var scope = NewDisposeScope();
        using var _ = inference_mode();
        var (query, key, value) = (mining.Query.linear, mining.Key, mining.Value);
        var dtype = key.linear.weight!.dtype;
        long auxHidden = key.linear.weight.shape[1], width = QueryWidth(auxHidden);
        using var scale = (1.0 / Math.Sqrt(key.linear.weight.shape[0])).ToScalar();

        var (wk, bk) = Wide(key.linear);                                                     // [D, Da], [D]
        var (gk, betak) = Wide(key.norm);                                                    // [Da]
        var u = wk * gk;                                                                     // [D, Da]: q ↦ u·√D
        u.sub_(u.mean([1], keepdim: true));                                                  // ũ
        var c = wk.matmul(betak).Plus(bk).unsqueeze(1);                                      // [D, 1]
        var keys = cat([u, c, zeros([u.shape[0], width - auxHidden - 1], u.dtype, u.device)], 1).mul_(scale); // [D, width]
        var (wq, bq) = Wide(query);                                                          // [D, D], [D]
        var queries = keys.t().matmul(wq);                                                   // [width, D]
        var queriesBias = keys.t().matmul(bq);                                               // [width]

        var (wv, bv) = Wide(value.linear);                                                   // [D, Da], [D]
        var (gv, betav) = Wide(value.norm);
        var values = wv * gv;
        values.sub_(values.mean([1], keepdim: true));
        var valuesBias = wv.matmul(betav).Plus(bv);

        return new FoldedWeights(Sources(mining), Keep(queries, dtype), Keep(queriesBias, dtype), Keep(values, dtype), Keep(valuesBias, dtype));
    }

    /// <summary>Whether these were folded from the parameter objects <paramref name="mining"/> holds now.</summary>
    public bool FoldedFrom(PatchInfoMining mining) => Enumerable.SequenceEqual(_sources, Sources(mining), ReferenceEqualityComparer.Instance);

    /// <summary>The parameter objects the products are folded from.</summary>
    static Tensor?[] Sources(PatchInfoMining mining)
    {
        var (query, key, value) = (mining.Query.linear, mining.Key, mining.Value);
        return [query.weight, query.bias, key.norm.weight, key.norm.bias, key.linear.weight, key.linear.bias,
            value.norm.weight, value.norm.bias, value.linear.weight, value.linear.bias];
    }

    /// <summary>
    /// <c>[Cols, Block·Width]</c> float32 on the weights' device: over one block row of the map (Block map rows of
    /// Width = Cols·Block positions, row-major), 0 where the position lies in the block of token column c, −∞ elsewhere.
    /// </summary>
    public Tensor BlockMask(RegionGrid grid)
    {
        if (_masks.TryGetValue((grid.Cols, grid.Block), out var mask)) return mask;
        using var scope = NewDisposeScope();
        using var _ = inference_mode();
        var device = Values.device;
        using var width = grid.Width.ToScalar();
        using var block = grid.Block.ToScalar();
        var owner = arange(grid.Block * grid.Width, ScalarType.Int64, device).remainder_(width).div_(block, RoundingMode.floor); // [s·W]: token column
        var own = owner.unsqueeze(0).eq(arange(grid.Cols, ScalarType.Int64, device).unsqueeze(1));                            // [Cols, s·W]
        mask = zeros(own.shape, ScalarType.Float32, device).masked_fill_(own.logical_not(), Scalars.NegativeInfinity).DetachFromDisposeScope();
        _masks[(grid.Cols, grid.Block)] = mask;
        return mask;
    }

    /// <summary>
    /// <c>[2W, W/2]</c> in <paramref name="type"/> on the weights' device: ¼ where input column j of a pair of map rows
    /// laid side by side (j mod W) falls in output column k (⌊(j mod W)/2⌋ = k), 0 elsewhere.
    /// </summary>
    public Tensor HalfScalePool(long width, ScalarType type)
    {
        if (_pools.TryGetValue((width, type), out var pool)) return pool;
        using var scope = NewDisposeScope();
        using var _ = inference_mode();
        var device = Values.device;
        using var columns = width.ToScalar();
        using var quarter = 0.25.ToScalar();
        var cell = arange(2 * width, ScalarType.Int64, device).remainder_(columns).div_(Scalars.Two, RoundingMode.floor); // [2W]: output column
        var hit = cell.unsqueeze(1).eq(arange(width / 2, ScalarType.Int64, device).unsqueeze(0));                         // [2W, W/2]
        pool = hit.to(type).mul_(quarter).DetachFromDisposeScope();
        _pools[(width, type)] = pool;
        return pool;
    }

    public void Dispose()
    {
        foreach (var t in new[] { Queries, QueriesBias, Values, ValuesBias }.Concat(_masks.Values).Concat(_pools.Values)) t.Dispose();
        _masks.Clear();
        _pools.Clear();
    }

    static (Tensor Weight, Tensor Bias) Wide(Linear linear) => (linear.weight!.to(ScalarType.Float64), linear.bias!.to(ScalarType.Float64));
    static (Tensor Weight, Tensor Bias) Wide(LayerNorm norm) => (norm.weight!.to(ScalarType.Float64), norm.bias!.to(ScalarType.Float64));
    static Tensor Keep(Tensor folded, ScalarType dtype) => folded.to(dtype).contiguous().DetachFromDisposeScope();
}
