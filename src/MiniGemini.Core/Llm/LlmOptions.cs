namespace MiniGemini.Llm;

/// <summary>Switches that change how a decoder computes, not what it is.</summary>
internal sealed record LlmOptions
{
    /// <summary>SDPA (default) or the eager reference path.</summary>
    public AttentionKind Attention { get; init; } = AttentionKind.Sdpa;

    /// <summary>
    /// Replaces the config's MLP activation, e.g. <c>gelu</c> for a Gemma fine-tune trained with exact GELU
    /// (transformers before 4.39 honoured Gemma's <c>hidden_act: gelu</c>; later versions use the tanh form).
    /// </summary>
    public string? HiddenActOverride { get; init; }
}
