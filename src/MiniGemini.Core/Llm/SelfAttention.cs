using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using static TorchSharp.torch.nn.functional;

namespace MiniGemini.Llm;

/// <summary>How attention probabilities are computed; both give HF's eager results.</summary>
internal enum AttentionKind
{
    /// <summary>libtorch's fused <c>scaled_dot_product_attention</c> (default scale 1/√d, boolean mask).</summary>
    Sdpa,
    /// <summary>HF's eager path written out: <c>softmax(q·kᵀ/√d + mask, float32) · v</c>. The reference.</summary>
    Eager,
}

/// <summary>
/// Multi-head self-attention with rotary positions and grouped key/value heads (MHA, GQA and MQA alike): HF
/// <c>LlamaAttention</c>, which Gemma and Mixtral share. Keys/values go through the cache when one is given.
/// </summary>
internal sealed class SelfAttention : nn.Module<Tensor, AttentionContext, Tensor>
{
    readonly Linear q_proj, k_proj, v_proj, o_proj;
    readonly int _layer, _heads, _kvHeads, _headDim;
    readonly AttentionKind _kind;

    public SelfAttention(int layer, int hidden, int heads, int kvHeads, int headDim, bool bias, AttentionKind kind,
        Device device, ScalarType dtype) : base(nameof(SelfAttention))
    {
        q_proj = Layers.Linear(hidden, heads * headDim, bias, device, dtype);
        k_proj = Layers.Linear(hidden, kvHeads * headDim, bias, device, dtype);
        v_proj = Layers.Linear(hidden, kvHeads * headDim, bias, device, dtype);
        o_proj = Layers.Linear(heads * headDim, hidden, bias, device, dtype);
        (_layer, _heads, _kvHeads, _headDim, _kind) = (layer, heads, kvHeads, headDim, kind);
        RegisterComponents();
    }

    public override Tensor forward(Tensor x, AttentionContext context)
    {
        using var scope = NewDisposeScope();
        long b = x.shape[0], t = x.shape[1];
        var q = q_proj.call(x).view(b, t, _heads, _headDim).transpose(1, 2);   // [B, h, T, d]
        var k = k_proj.call(x).view(b, t, _kvHeads, _headDim).transpose(1, 2); // [B, kv, T, d]
        var v = v_proj.call(x).view(b, t, _kvHeads, _headDim).transpose(1, 2); // [B, kv, T, d]
        q = context.Rotary.Apply(q);
        k = context.Rotary.Apply(k);
        if (context.Cache is { } cache) (k, v) = cache.Write(_layer, k, v);   // [B, kv, S, d]
        k = RepeatKv(k, _heads / _kvHeads);                                   // [B, h, S, d]
        v = RepeatKv(v, _heads / _kvHeads);
        var y = _kind == AttentionKind.Sdpa
            ? scaled_dot_product_attention(q, k, v, context.Mask, is_casual: context.IsCausal)
            : EagerAttention(q, k, v, context.Mask);
        y = y.transpose(1, 2).reshape(b, t, _heads * _headDim);                // [B, T, h·d]
        return o_proj.call(y).MoveToOuterDisposeScope();
    }

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
        var scores = q.matmul(k.transpose(2, 3)) * Math.Pow(q.shape[^1], -0.5); // [B, h, T, S]
        if (mask is not null) scores = scores.masked_fill(mask.logical_not(), torch.finfo(scores.dtype).min);
        return softmax(scores, -1, ScalarType.Float32).to(q.dtype).matmul(v);     // [B, h, T, d]
    }
}
