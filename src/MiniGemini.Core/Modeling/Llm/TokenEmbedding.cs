using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace MiniGemini.Modeling;

/// <summary>The token embedding table (<c>embed_tokens.weight</c>, [vocab, hidden]); a lookup, nothing more.</summary>
internal sealed class TokenEmbedding : nn.Module<Tensor, Tensor>
{
    internal Parameter weight;

    public TokenEmbedding(long vocab, long hidden, Device device, ScalarType dtype) : base(nameof(TokenEmbedding))
    {
        weight = new Parameter(empty(vocab, hidden, dtype: dtype, device: device), requires_grad: false);
        RegisterComponents();
    }

    /// <summary>ids [..] → [.., hidden].</summary>
    public override Tensor forward(Tensor ids)
    {
        using var scope = NewDisposeScope();
        var shape = ids.shape.Append(weight.size(1)).ToArray();
        return weight.index_select(0, ids.reshape(-1)).view(shape).MoveToOuterDisposeScope();
    }
}
