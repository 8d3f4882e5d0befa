using MiniGemini.Checkpoints;
using MiniGemini.Modeling;
using TorchSharp;
using static TorchSharp.torch;

namespace MiniGemini.Modeling;

/// <summary>
/// The language model as the pipeline uses it: embed ids, run a forward over input embeddings (text and spliced
/// image features alike) with an optional key/value cache, read float32 logits.
/// </summary>
internal interface ILlmAdapter : IDisposable
{
    LlmConfig Config { get; }

    /// <summary>Stop ids: generation_config.json's when the model folder has one, else config.json's.</summary>
    IReadOnlyList<int> EosTokenIds { get; }

    Device Device { get; }

    ScalarType DType { get; }

    /// <summary>
    /// ids [B, T] (any integer dtype) → raw embeddings [B, T, H] in the model dtype. Raw means unscaled: Gemma's
    /// √hidden factor is applied by <see cref="Forward"/> to all inputs, spliced image tokens included.
    /// </summary>
    /// <param name="ids">Token ids.</param>
    /// <param name="validate">Check ids against the vocabulary first (one host read). Skip only for ids the model produced.</param>
    /// <exception cref="ArgumentOutOfRangeException">An id outside [0, vocab).</exception>
    Tensor Embed(Tensor ids, bool validate = true);

    /// <summary>
    /// One forward. <paramref name="inputsEmbeds"/> [B, T, H] at <paramref name="positionIds"/> [B, T];
    /// <paramref name="attentionMask"/> [B, past + T] (1 = attend, 0 = padding) or null; with a cache, the T new
    /// keys/values are appended after its filled positions. Returns float32 logits of the last position [B, V],
    /// or of every position [B, T, V] when <paramref name="allLogits"/>.
    /// </summary>
    Tensor Forward(Tensor inputsEmbeds, Tensor positionIds, Tensor? attentionMask = null, KvCache? cache = null, bool allLogits = false);

    /// <summary>A cache for <paramref name="batch"/> rows of up to <paramref name="maxLength"/> positions, on the model's device and dtype.</summary>
    KvCache CreateCache(int batch, int maxLength);

    /// <summary>Moves and converts the weights; tied weights stay tied (the head reads the embedding table itself).</summary>
    void To(Device device, ScalarType dtype);
}
