using MiniGemini.Checkpoints;
using MiniGemini.Generation;
using MiniGemini.Modeling;
using MiniGemini.Text;

namespace MiniGemini;

/// <summary>
/// What a loaded model generates with when a request says nothing else, computed once at load from config.json,
/// generation_config.json, the tokenizer and the conversation template: the one source of a model's stop ids and pad id.
/// </summary>
public sealed record GenerationDefaults
{
    /// <summary>The options of a request that passes none: generation_config.json's token budget, repetition penalty and, when it sets <c>do_sample</c>, its sampling settings.</summary>
    public required GenerationOptions Options { get; init; }

    /// <summary>Ids that end an answer: generation_config.json's <c>eos_token_id</c> (else config.json's), then the template's stop tokens.</summary>
    public required IReadOnlyList<int> StopTokenIds { get; init; }

    /// <summary>The id finished rows of a batch are filled with: generation_config.json's, else config.json's <c>pad_token_id</c>, else the first stop id.</summary>
    public required int PadTokenId { get; init; }

    /// <summary>The defaults of a model with this config, generation config (null when the folder has none), tokenizer and template.</summary>
    internal static GenerationDefaults Create(LlmConfig config, GenerationConfig? generation, MiniGeminiTokenizer tokenizer, ConversationTemplate template)
    {
        var stops = (generation?.EosTokenIds is { Count: > 0 } eos ? eos : config.EosTokenIds).ToList();
        foreach (var id in template.StopTokenIds(tokenizer))
            if (!stops.Contains(id)) stops.Add(id);
        int pad = generation?.PadTokenId ?? config.PadTokenId ?? (stops.Count > 0 ? stops[0] : 0);
        var options = generation is null ? new GenerationOptions() : GenerationOptions.FromGenerationConfig(generation);
        return new GenerationDefaults
        {
            Options = options with { EosTokenIds = stops, PadTokenId = pad },
            StopTokenIds = stops,
            PadTokenId = pad,
        };
    }

    /// <summary>The options a request runs with: the caller's when given (stop and pad ids filled in where it left them out), else <see cref="Options"/>.</summary>
    public GenerationOptions Resolve(GenerationOptions? requested) => requested is null
        ? Options
        : requested with { EosTokenIds = requested.EosTokenIds ?? StopTokenIds, PadTokenId = requested.PadTokenId ?? PadTokenId };
}
