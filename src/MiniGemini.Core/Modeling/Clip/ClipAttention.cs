using MiniGemini.Checkpoints;
using TorchSharp;
using TorchSharp.Modules;
using TorchSharp.Utils;
using static TorchSharp.torch;

namespace MiniGemini.Modeling;

/// <summary>HF <c>CLIPAttention</c>: bidirectional multi-head self-attention, every projection with a bias.</summary>
internal sealed class ClipAttention : nn.Module<Tensor, Tensor>
{
    [ComponentName(Name = "k_proj")] readonly Linear _kProj;
    [ComponentName(Name = "v_proj")] readonly Linear _vProj;
    [ComponentName(Name = "q_proj")] readonly Linear _qProj;
    [ComponentName(Name = "out_proj")] readonly Linear _outProj;
    readonly int _heads;
    readonly int _headDim;

    public ClipAttention(ClipVisionConfig config) : base(nameof(ClipAttention))
    {
        _heads = config.NumAttentionHeads;
        _headDim = config.HeadDim;
        _kProj = LoadingLayers.Linear(config.HiddenSize, config.HiddenSize);
        _vProj = LoadingLayers.Linear(config.HiddenSize, config.HiddenSize);
        _qProj = LoadingLayers.Linear(config.HiddenSize, config.HiddenSize);
        _outProj = LoadingLayers.Linear(config.HiddenSize, config.HiddenSize);
        RegisterComponents();
    }

    public override Tensor forward(Tensor x)
    {
        long batch = x.shape[0], tokens = x.shape[1];
        var q = SplitHeads(_qProj.call(x), batch, tokens); // [B, H, N, d]
        var k = SplitHeads(_kProj.call(x), batch, tokens);
        var v = SplitHeads(_vProj.call(x), batch, tokens);
        // SDPA's implicit scale is 1/√d, exactly HF's head_dim^-0.5; no mask: every token sees every token.
        var attended = nn.functional.scaled_dot_product_attention(q, k, v); // [B, H, N, d]
        return _outProj.call(attended.transpose(1, 2).reshape(batch, tokens, -1)); // [B, N, D]
    }

    Tensor SplitHeads(Tensor t, long batch, long tokens) =>
        t.view(batch, tokens, _heads, _headDim).transpose(1, 2); // [B, N, D] -> [B, H, N, d]
}
