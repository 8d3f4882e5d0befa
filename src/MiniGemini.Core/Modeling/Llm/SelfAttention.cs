using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using static TorchSharp.torch.nn.functional;

namespace MiniGemini.Modeling;

/// <summary>How attention probabilities are computed; both give HF's eager results.</summary>
public enum AttentionKind
{
    /// <summary>libtorch's fused <c>scaled_dot_product_attention</c> (default scale 1/√d, boolean mask).</summary>
    Sdpa,
    /// <summary>HF's eager path written out: <c>softmax(q·kᵀ/√d + mask, float32) · v</c>. The reference.</summary>
    Eager,
}

/// <summary>
/// Multi-head self-attention with rotary positions and grouped key/value heads (MHA, GQA and MQA alike): HF
/// <c>LlamaAttention</c>, which Gemma and Mixtral share. Keys/values go through the cache when one is given.
/// q/k/v run as one matmul (<see cref="FusedLinear"/>; the checkpoint keys stay <c>q_proj</c>, <c>k_proj</c>,
/// <c>v_proj</c>), and the rotary positions are applied to q and k together, in place.
/// </summary>
internal sealed class SelfAttention : nn.Module<Tensor, AttentionContext, Tensor>
{
    readonly FusedLinear _qkv;
    readonly Linear q_proj, k_proj, v_proj, o_proj;
    readonly int _layer, _heads, _kvHeads, _headDim;
    readonly AttentionKind _kind;

    public SelfAttention(int layer, int hidden, int heads, int kvHeads, int headDim, bool bias, AttentionKind kind,
        Device device, ScalarType dtype) : base(nameof(SelfAttention))
    {
        _qkv = new FusedLinear(hidden, [heads * headDim, kvHeads * headDim, kvHeads * headDim], bias, device, dtype);
        (q_proj, k_proj, v_proj) = (_qkv.Parts[0], _qkv.Parts[1], _qkv.Parts[2]);
        o_proj = Layers.Linear(heads * headDim, hidden, bias, device, dtype);
        (_layer, _heads, _kvHeads, _headDim, _kind) = (layer, heads, kvHeads, headDim, kind);
        RegisterComponents();
    }

    internal FusedLinear Qkv => _qkv;
    internal Linear OutProj => o_proj;

    public override Tensor forward(Tensor x, AttentionContext context)
    {
        using var scope = NewDisposeScope();
        long b = x.size(0), t = x.size(1);
        var qkv = _qkv.Forward(x).view(b, t, _heads + 2 * _kvHeads, _headDim);    // [B, T, h + 2kv, d]
        context.Rotary.ApplyInPlace(qkv.narrow(2, 0, _heads + _kvHeads));          // q and k heads
        var q = qkv.narrow(2, 0, _heads);                                          // [B, T, h, d]
        var kv = qkv.narrow(2, _heads, 2 * _kvHeads);                               // [B, T, 2kv, d]
        var (k, v) = context.Cache is { } cache ? cache.Write(_layer, kv) : KvCache.Split(kv); // [B, kv, S, d] each
        context.Probe?.Observe(_layer, q, k);
        var y = t == 1 ? AttendOneQuery(q, k, v, context.Mask) : AttendMany(q, k, v, context); // [B, T, h·d]
        return RowLinear.Linear(y, o_proj.weight!, o_proj.bias).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// One query per row (a decode step): the g query heads that share a key/value head attend as g queries of that
    /// head — grouped-query attention without repeating keys and values, and no mask unless there is padding. In
    /// bfloat16 on the CPU with no mask, <see cref="OneQueryAttention"/> reads the cache instead of libtorch.
    /// q [B, 1, h, d], keys/values [B, kv, S, d] → [B, 1, h·d].
    /// </summary>
    Tensor AttendOneQuery(Tensor q, Tensor k, Tensor v, Tensor? mask)
    {
        long b = q.size(0);
        var grouped = q.view(b, _kvHeads, _heads / _kvHeads, _headDim);           // [B, kv, g, d]
        var y = OneQueryAttention.Applies(grouped, k, v, mask)
            ? OneQueryAttention.Forward(grouped, k, v)
            : Attend(grouped, k, v, mask, isCausal: false);                       // [B, kv, g, d]
        return y.reshape(b, 1, _heads * _headDim);
    }

    /// <summary>T queries per row (a prefill): q [B, T, h, d], keys/values [B, kv, S, d] → [B, T, h·d].</summary>
    Tensor AttendMany(Tensor q, Tensor k, Tensor v, AttentionContext context)
    {
        long b = q.size(0), t = q.size(1);
        k = RepeatKv(k, _heads / _kvHeads);                                       // [B, h, S, d]
        v = RepeatKv(v, _heads / _kvHeads);
        var y = Attend(q.transpose(1, 2), k, v, context.Mask, context.IsCausal);  // [B, h, T, d]
        return y.transpose(1, 2).reshape(b, t, _heads * _headDim);
    }

    Tensor Attend(Tensor q, Tensor k, Tensor v, Tensor? mask, bool isCausal) => _kind == AttentionKind.Sdpa
        ? scaled_dot_product_attention(q, k, v, mask, is_casual: isCausal)
        : EagerAttention(q, k, v, mask);

    /// <summary>[B, kv, S, d] → [B, kv·n, S, d], each key/value head repeated for its n query heads (HF repeat_kv).</summary>
    static Tensor RepeatKv(Tensor x, int n)
    {
        if (n == 1) return x;
        long b = x.shape[0], kv = x.shape[1], s = x.shape[2], d = x.shape[3];
        return x.unsqueeze(2).expand(b, kv, n, s, d).reshape(b, kv * n, s, d);
    }

    /// <summary>HF eager attention; a null mask means nothing is masked (a single query with no padding).</summary>
    static Tensor EagerAttention(Tensor q, Tensor k, Tensor v, Tensor? mask)
    {
        using var scale = Math.Pow(q.shape[^1], -0.5).ToScalar();
        var scores = q.matmul(k.transpose(2, 3)).mul(scale); // [B, h, T, S]
        if (mask is not null)
        {
            using var lowest = torch.finfo(scores.dtype).min.ToScalar();
            scores = scores.masked_fill(mask.logical_not(), lowest);
        }
        return softmax(scores, -1, ScalarType.Float32).to(q.dtype).matmul(v);     // [B, h, T, d]
    }

    // Module.to moved q/k/v one by one; put them back into one tensor.
    protected override void _toEpilog(ScalarType? dtype, Device? device, bool non_blocking)
    {
        base._toEpilog(dtype, device, non_blocking);
        _qkv.Rejoin();
    }

    protected override void Dispose(bool disposing)
    {
        base.Dispose(disposing);
        if (disposing) _qkv.Dispose();
    }
}
