using TorchSharp;
using static TorchSharp.torch;

namespace MiniGemini.Modeling;

/// <summary>
/// A pre-norm decoder block: <c>h = x + attn(norm₁(x)); out = h + ff(norm₂(h))</c>. The feed-forward is named
/// <c>mlp</c> (dense) or <c>block_sparse_moe</c> (Mixtral), as in the checkpoints; exactly one of them exists.
/// </summary>
internal sealed class DecoderLayer : nn.Module<Tensor, AttentionContext, Tensor>
{
    readonly SelfAttention self_attn;
    readonly nn.Module<Tensor, Tensor>? mlp;
    readonly nn.Module<Tensor, Tensor>? block_sparse_moe;
    readonly nn.Module<Tensor, Tensor> input_layernorm;
    readonly nn.Module<Tensor, Tensor> post_attention_layernorm;

    public DecoderLayer(LlmArchitecture arch, int layer, Device device, ScalarType dtype) : base(nameof(DecoderLayer))
    {
        var c = arch.Config;
        self_attn = new SelfAttention(layer, c.HiddenSize, c.NumAttentionHeads, c.NumKeyValueHeads, c.HeadDim, c.AttentionBias,
            arch.Options.Attention, device, dtype);
        var feedForward = arch.FeedForward(layer, device, dtype);
        if (arch.IsSparse) block_sparse_moe = feedForward;
        else mlp = feedForward;
        input_layernorm = arch.Norm(device, dtype);
        post_attention_layernorm = arch.Norm(device, dtype);
        RegisterComponents();
    }

    internal SelfAttention Attention => self_attn;

    /// <summary>The dense MLP, or null in a sparse (Mixtral) layer.</summary>
    internal GatedMlp? Mlp => mlp as GatedMlp;

    internal Tensor InputNormWeight => ((nn.Module)input_layernorm).get_parameter("weight")!;
    internal Tensor PostAttentionNormWeight => ((nn.Module)post_attention_layernorm).get_parameter("weight")!;

    public override Tensor forward(Tensor x, AttentionContext context)
    {
        using var scope = NewDisposeScope();
        var h = TensorHelpers.AddInto(self_attn.call(input_layernorm.call(x), context), x);          // x + attn(norm₁(x)), into attn's fresh output
        var feedForward = mlp ?? block_sparse_moe!;
        return TensorHelpers.AddInto(h, feedForward.call(post_attention_layernorm.call(h))).MoveToOuterDisposeScope();
    }
}
