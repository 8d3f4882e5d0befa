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

    /// <summary>
    /// Whether a decode step (one new token per row, with the cache) runs as one TorchScript function compiled for the
    /// model at its first use, instead of op by op: the same ops (on a CPU in float32 the same logits, bit for bit)
    /// without a call from .NET per op; where libtorch's fuser runs (GPUs) it may also join elementwise chains, which
    /// can round half-precision values differently. Null (the default): compiled on GPUs, whose decode step waits on the
    /// host; op by op on CPUs, where libtorch's own time per op is most of a step and compiling gains at most 1.1–1.45×
    /// for a first use that costs ~100 ms. True: compiled on any device. False: op by op. Should the compiled step fail
    /// with a libtorch error, the model decodes op by op from then on. Mixtral (whose routing reads the host) and
    /// float64 always run op by op.
    /// </summary>
    public bool? CompileDecodeStep { get; init; }

    /// <summary>The size from which <see cref="MapWeights"/> maps by default: 1 GiB.</summary>
    public const long MapFromBytes = 1L << 30;
}
