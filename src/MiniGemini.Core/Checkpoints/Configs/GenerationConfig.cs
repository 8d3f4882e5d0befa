namespace MiniGemini.Checkpoints;

/// <summary>HF <c>generation_config.json</c>: stop ids and sampling defaults shipped with a model.</summary>
internal sealed record GenerationConfig
{
    /// <summary>EOS ids (Llama-3 lists both <c>&lt;|end_of_text|&gt;</c> and <c>&lt;|eot_id|&gt;</c>).</summary>
    public IReadOnlyList<int> EosTokenIds { get; init; } = [];
    /// <summary>BOS id.</summary>
    public int? BosTokenId { get; init; }
    /// <summary>Padding id.</summary>
    public int? PadTokenId { get; init; }
    /// <summary>Default temperature.</summary>
    public double? Temperature { get; init; }
    /// <summary>Default nucleus threshold.</summary>
    public double? TopP { get; init; }
    /// <summary>Default top-k.</summary>
    public int? TopK { get; init; }
    /// <summary>Whether sampling is on by default.</summary>
    public bool? DoSample { get; init; }
    /// <summary>Default token budget.</summary>
    public int? MaxNewTokens { get; init; }
    /// <summary>Default repetition penalty.</summary>
    public double? RepetitionPenalty { get; init; }

    /// <summary>Reads generation_config.json.</summary>
    public static GenerationConfig Load(string path) => From(ConfigJson.Load(path));

    internal static GenerationConfig From(ConfigJson json) => new()
    {
        EosTokenIds = json.IntOrInts("eos_token_id"),
        BosTokenId = json.OptionalInt("bos_token_id"),
        PadTokenId = json.OptionalInt("pad_token_id"),
        Temperature = json.OptionalDouble("temperature"),
        TopP = json.OptionalDouble("top_p"),
        TopK = json.OptionalInt("top_k"),
        DoSample = json.OptionalBool("do_sample"),
        MaxNewTokens = json.OptionalInt("max_new_tokens"),
        RepetitionPenalty = json.OptionalDouble("repetition_penalty"),
    };
}
