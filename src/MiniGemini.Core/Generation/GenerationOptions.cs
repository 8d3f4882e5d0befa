using MiniGemini.Checkpoints;
using MiniGemini.Generation;
using MiniGemini.Modeling;

namespace MiniGemini;

/// <summary>
/// How text is generated: token budget, sampling (with transformers' semantics and processor order: repetition
/// penalty → temperature → top-k → top-p) and when to stop. Immutable; derive variants with <c>with</c>.
/// </summary>
public sealed record GenerationOptions
{
    /// <summary>
    /// Most tokens to generate per row. Null (the default): as many as the context has left after the prompt, so a
    /// default request never fails for its length; generation then ends with <see cref="FinishReason.Length"/> at the
    /// context's end. A number that does not fit beside the prompt is refused with
    /// <see cref="ContextLengthExceededException"/>.
    /// </summary>
    public int? MaxNewTokens { get; init; }

    /// <summary>
    /// Softmax temperature; 0 (the default) decodes greedily and ignores <see cref="TopK"/>, <see cref="TopP"/> and
    /// <see cref="Seed"/>. A sampling temperature is at least <see cref="MinTemperature"/>.
    /// </summary>
    public double Temperature { get; init; }

    /// <summary>
    /// The smallest sampling temperature: below it, logits divided by the temperature overflow to infinity (1e-320
    /// would make every token equally likely), while sampling there is already greedy in effect; use 0 for greedy.
    /// </summary>
    public const double MinTemperature = 1e-3;

    /// <summary>Nucleus sampling: keep the smallest set of tokens whose probability reaches this mass; 1 disables.</summary>
    public double TopP { get; init; } = 1.0;

    /// <summary>Keep only the k most likely tokens when sampling; 0 disables. Default 50, transformers' default.</summary>
    public int TopK { get; init; } = 50;

    /// <summary>
    /// transformers' repetition penalty over the tokens generated so far: positive logits are divided by it, negative
    /// ones multiplied. 1 disables. (With input embeddings, as Mini-Gemini generates, the prompt is not penalised.)
    /// </summary>
    public double RepetitionPenalty { get; init; } = 1.0;

    /// <summary>Seed of the request's own random generator, for reproducible sampling; null draws a fresh seed.</summary>
    public long? Seed { get; init; }

    /// <summary>
    /// Token ids that end a row (e.g. Llama-3's 128001 and 128009); null uses the model's (generation_config.json,
    /// else config.json); an empty list never stops early.
    /// </summary>
    public IReadOnlyList<int>? EosTokenIds { get; init; }

    /// <summary>Id fed to and reported for rows that have finished; null uses the config's pad id, else the first EOS id, else 0.</summary>
    public int? PadTokenId { get; init; }

    /// <summary>
    /// Strings that end generation when they appear in the decoded text (e.g. a template's separator). Token-level
    /// decoding does not look at them; the text layer that decodes the stream applies them.
    /// </summary>
    public IReadOnlyList<string> StopStrings { get; init; } = [];

    /// <summary>Whether tokens are drawn at random (temperature above zero) rather than chosen greedily.</summary>
    public bool IsSampling => Temperature > 0;

    /// <summary>
    /// The defaults a model ships in generation_config.json (stop ids, token budget, and the sampling settings when
    /// <c>do_sample</c> is true), on top of <paramref name="baseline"/> (or the defaults above).
    /// </summary>
    internal static GenerationOptions FromGenerationConfig(GenerationConfig config, GenerationOptions? baseline = null)
    {
        var options = baseline ?? new GenerationOptions();
        if (config.EosTokenIds.Count > 0) options = options with { EosTokenIds = config.EosTokenIds };
        if (config.PadTokenId is { } pad) options = options with { PadTokenId = pad };
        if (config.MaxNewTokens is { } max) options = options with { MaxNewTokens = max };
        if (config.RepetitionPenalty is { } penalty) options = options with { RepetitionPenalty = penalty };
        if (config.DoSample == true)
            options = options with
            {
                Temperature = config.Temperature ?? 1.0,
                TopP = config.TopP ?? options.TopP,
                TopK = config.TopK ?? options.TopK,
            };
        return options;
    }

    /// <summary>Throws <see cref="ArgumentOutOfRangeException"/> naming the first setting out of range.</summary>
    public void Validate()
    {
        if (MaxNewTokens is < 1)
            throw new ArgumentOutOfRangeException(nameof(MaxNewTokens), MaxNewTokens, "MaxNewTokens must be at least 1.");
        if (!(Temperature >= 0) || double.IsInfinity(Temperature))
            throw new ArgumentOutOfRangeException(nameof(Temperature), Temperature, "Temperature must be a finite number ≥ 0 (0 = greedy).");
        if (Temperature > 0 && Temperature < MinTemperature)
            throw new ArgumentOutOfRangeException(nameof(Temperature), Temperature,
                $"Temperature must be 0 (greedy) or at least {MinTemperature} (below, the scaled logits overflow).");
        if (!(TopP > 0 && TopP <= 1))
            throw new ArgumentOutOfRangeException(nameof(TopP), TopP, "TopP must be in (0, 1].");
        if (TopK < 0)
            throw new ArgumentOutOfRangeException(nameof(TopK), TopK, "TopK must be ≥ 0 (0 = off).");
        if (!(RepetitionPenalty > 0) || double.IsInfinity(RepetitionPenalty))
            throw new ArgumentOutOfRangeException(nameof(RepetitionPenalty), RepetitionPenalty, "RepetitionPenalty must be a finite number > 0 (1 = off).");
    }
}
