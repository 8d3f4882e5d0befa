namespace MiniGemini.Modeling;

/// <summary>Switches that change how a decoder computes, not what it is.</summary>
public sealed record LlmOptions
{
    /// <summary>SDPA (default) or the eager reference path.</summary>
    public AttentionKind Attention { get; init; } = AttentionKind.Sdpa;

    /// <summary>
    /// Replaces the config's MLP activation, e.g. <c>gelu</c> for a Gemma fine-tune trained with exact GELU
    /// (transformers before 4.39 honoured Gemma's <c>hidden_act: gelu</c>; later versions use the tanh form).
    /// </summary>
    public string? HiddenActOverride { get; init; }

    /// <summary>
    /// Whether the weights of a CPU model in the checkpoint's own dtype become views of the memory-mapped files instead
    /// of copies. Null (the default): checkpoints of at least <see cref="MapFromBytes"/> are mapped, where a copy would
    /// cost the time and memory of the weights once more; smaller ones are copied into joint q/k/v and gate/up tensors,
    /// where one matmul instead of three saves per-op time that matters at small sizes.
    /// </summary>
    public bool? MapWeights { get; init; }

    /// <summary>The size from which <see cref="MapWeights"/> maps by default: 1 GiB.</summary>
    public const long MapFromBytes = 1L << 30;
}
