namespace MiniGemini.Benchmarks.ShapedCheckpoints;

/// <summary>
/// The shape of a Llama-family or Gemma decoder as its HF config.json gives it (spec §8.2), and its tensors in the HF
/// layout (spec §8.3): <c>model.embed_tokens</c>, <c>model.layers.{i}.self_attn.{q,k,v,o}_proj</c> (no biases),
/// <c>mlp.{gate,up,down}_proj</c>, the two RMSNorms per layer, <c>model.norm</c> and <c>lm_head</c> unless tied.
/// </summary>
/// <param name="VocabSize">Rows of the embedding and of lm_head.</param>
/// <param name="HiddenSize">Model width.</param>
/// <param name="Layers">Decoder layers.</param>
/// <param name="Heads">Query heads.</param>
/// <param name="KvHeads">Key/value heads.</param>
/// <param name="HeadDim">Per-head width (Gemma's is not hidden / heads).</param>
/// <param name="IntermediateSize">MLP width.</param>
/// <param name="TiedHead">Whether lm_head is the embedding (then transformers does not store it).</param>
/// <param name="NormAsOffset">Whether RMSNorm weights are stored as an offset from 1 (Gemma: y = x̂ · (1 + w)).</param>
public sealed record DecoderShape(
    int VocabSize, int HiddenSize, int Layers, int Heads, int KvHeads, int HeadDim, int IntermediateSize,
    bool TiedHead, bool NormAsOffset)
{
    /// <summary>Gemma-2B (MGM-2B's base): 18 layers, width 2048, 8 heads of 256, one KV head, MLP 16384, vocabulary 256000, tied.</summary>
    public static DecoderShape Gemma2B { get; } = new(256_000, 2048, 18, 8, 1, 256, 16_384, TiedHead: true, NormAsOffset: true);

    /// <summary>Vicuna-7B v1.5 (Llama-2-7B; MGM-7B's base): 32 layers, width 4096, 32 heads of 128, MLP 11008, vocabulary 32000.</summary>
    public static DecoderShape Vicuna7B { get; } = new(32_000, 4096, 32, 32, 32, 128, 11_008, TiedHead: false, NormAsOffset: false);

    /// <summary>Adds everything before the multimodal modules, in state-dict order: embedding, layers, final norm.</summary>
    public void AddBody(TensorList list)
    {
        var model = list.Under("model.");
        model.Embedding("embed_tokens", VocabSize, HiddenSize);
        for (int i = 0; i < Layers; i++)
        {
            var layer = model.Under($"layers.{i}.");
            layer.Linear("self_attn.q_proj", HiddenSize, (long)Heads * HeadDim, bias: false)
                 .Linear("self_attn.k_proj", HiddenSize, (long)KvHeads * HeadDim, bias: false)
                 .Linear("self_attn.v_proj", HiddenSize, (long)KvHeads * HeadDim, bias: false)
                 .Linear("self_attn.o_proj", (long)Heads * HeadDim, HiddenSize, bias: false)
                 .Linear("mlp.gate_proj", HiddenSize, IntermediateSize, bias: false)
                 .Linear("mlp.up_proj", HiddenSize, IntermediateSize, bias: false)
                 .Linear("mlp.down_proj", IntermediateSize, HiddenSize, bias: false)
                 .RmsNorm("input_layernorm", HiddenSize, NormAsOffset)
                 .RmsNorm("post_attention_layernorm", HiddenSize, NormAsOffset);
        }
        model.RmsNorm("norm", HiddenSize, NormAsOffset);
    }

    /// <summary>Adds <c>lm_head.weight</c>, which the causal-LM wrapper registers after the model; nothing when tied.</summary>
    public void AddHead(TensorList list)
    {
        if (!TiedHead) list.Linear("lm_head", HiddenSize, VocabSize, bias: false);
    }
}
