using static TorchSharp.torch;

namespace MiniGemini.Modeling;

/// <summary>
/// HF <c>BaseModelOutputWithPooling</c> of the CLIP vision tower. The caller owns the tensors (or lets an enclosing
/// dispose scope take them); <see cref="Dispose"/> frees them all.
/// </summary>
public sealed class ClipVisionOutput(Tensor lastHiddenState, Tensor poolerOutput, IReadOnlyList<Tensor> hiddenStates) : IDisposable
{
    /// <summary>Output of the last encoder layer, <c>[B, 1 + P, D]</c> (no post-LayerNorm, as in HF).</summary>
    public Tensor LastHiddenState { get; } = lastHiddenState;

    /// <summary><c>post_layernorm</c> of the CLS token of <see cref="LastHiddenState"/>, <c>[B, D]</c>.</summary>
    public Tensor PoolerOutput { get; } = poolerOutput;

    /// <summary>
    /// When requested: the embeddings after <c>pre_layrnorm</c>, then each layer's output (L + 1 entries, the last one
    /// is <see cref="LastHiddenState"/>); otherwise empty.
    /// </summary>
    public IReadOnlyList<Tensor> HiddenStates { get; } = hiddenStates;

    /// <summary>Frees the tensors.</summary>
    public void Dispose()
    {
        foreach (var t in HiddenStates.Append(LastHiddenState).Append(PoolerOutput).Distinct(ReferenceEqualityComparer.Instance))
            ((Tensor)t!).Dispose();
    }
}
