using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace MiniGemini.Modeling;

/// <summary>
/// HF's <c>XxxModel</c> (the checkpoint's <c>model.</c> sub-tree): embeddings, decoder layers, final norm and the
/// shared rotary tables. Takes input embeddings, not ids, so spliced image features enter the same way as text.
/// </summary>
internal class DecoderStack : nn.Module<Tensor, Tensor, Tensor?, KvCache?, Tensor>
{
    internal readonly TokenEmbedding embed_tokens;
    readonly ModuleList<DecoderLayer> layers;
    readonly nn.Module<Tensor, Tensor> norm;
    internal readonly RotaryEmbedding rotary_emb;
    readonly double? _embeddingScale;
    readonly AttentionKind _attention;

    public DecoderStack(LlmArchitecture arch, Device device, ScalarType dtype) : base(nameof(DecoderStack))
    {
        var c = arch.Config;
        embed_tokens = new TokenEmbedding(c.VocabSize, c.HiddenSize, device, dtype);
        layers = new ModuleList<DecoderLayer>(
            Enumerable.Range(0, c.NumHiddenLayers).Select(i => new DecoderLayer(arch, i, device, dtype)).ToArray());
        norm = arch.Norm(device, dtype);
        rotary_emb = new RotaryEmbedding(c.HeadDim, c.RopeTheta, c.RopeScaling, device);
        _embeddingScale = arch.EmbeddingScale;
        _attention = arch.Options.Attention;
        RegisterComponents();
    }

    public int LayerCount => layers.Count;

    internal IList<DecoderLayer> Layers => layers;

    /// <summary>The final norm's weight.</summary>
    internal Tensor NormWeight => ((nn.Module)norm).get_parameter("weight")!;

    /// <summary>
    /// Input embeddings [B, T, H] at positions [B, T], key mask [B, past + T] or null, optional cache (advanced by T)
    /// → final-normed hidden states [B, T, H].
    /// </summary>
    public override Tensor forward(Tensor inputsEmbeds, Tensor positions, Tensor? keyMask, KvCache? cache)
    {
        using var scope = NewDisposeScope();
        long t = inputsEmbeds.size(1), past = cache?.Length ?? 0;
        cache?.EnsureRoom(t);
        var x = inputsEmbeds;
        if (_embeddingScale is { } scale)
        {
            using var rounded = RoundedTo(scale, x.dtype).ToScalar();
            x = x.mul(rounded);
        }
        var rotary = rotary_emb.call(positions, x.dtype);
        var mask = AttentionMask.Build(keyMask, t, past, explicitCausal: _attention == AttentionKind.Eager, x.device);
        var context = new AttentionContext(rotary, mask, IsCausal: mask is null && t > 1, cache, cache is null ? AttentionProbe.Current : null);
        foreach (var layer in layers) x = layer.call(x, context);
        cache?.Advance(t);
        return norm.call(x).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// HF multiplies by the scale as a tensor of the activation dtype (√2048 is 45.25 in bf16, not 45.2548…); the
    /// same rounding, done on the CPU, so no scalar tensor is sent to the device per forward.
    /// </summary>
    internal static double RoundedTo(double value, ScalarType dtype)
    {
        using var scope = NewDisposeScope();
        return tensor(value, dtype).to(ScalarType.Float64).item<double>();
    }
}
