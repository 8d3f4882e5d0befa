using MiniGemini.Checkpoints;
using TorchSharp;

namespace MiniGemini.Modeling;

/// <summary>The decoder families Mini-Gemini builds on.</summary>
public enum LlmFamily
{
    /// <summary>Llama architecture: Vicuna, Llama-3, Yi (Nous-Hermes-2-Yi), Mistral.</summary>
    Llama,
    /// <summary>Gemma: (1+w) RMSNorm, scaled embeddings, GeGLU, multi-query attention, tied head.</summary>
    Gemma,
    /// <summary>Mixtral: Llama-style attention with a sparse mixture-of-experts MLP.</summary>
    Mixtral,
}

/// <summary>Llama-3 style rotary frequency scaling (<c>rope_type: llama3</c>).</summary>
/// <param name="Type">The rope type (only <c>llama3</c> and <c>default</c> are supported).</param>
/// <param name="Factor">Overall scaling factor.</param>
/// <param name="LowFreqFactor">Low-frequency factor.</param>
/// <param name="HighFreqFactor">High-frequency factor.</param>
/// <param name="OriginalMaxPositionEmbeddings">Context length the base model was trained with.</param>
public sealed record RopeScaling(string Type, double Factor, double LowFreqFactor, double HighFreqFactor, int OriginalMaxPositionEmbeddings);

/// <summary>
/// An HF causal-LM <c>config.json</c> (Llama, Mistral, Yi, Gemma, Mixtral, and Mini-Gemini's own <c>mgm*</c> types),
/// accepting both transformers-4 and -5 spellings (<c>rope_theta</c> / <c>rope_parameters</c>,
/// <c>torch_dtype</c> / <c>dtype</c>). The family comes from the config, never from a folder name.
/// </summary>
public sealed record LlmConfig
{
    /// <summary>Architecture family.</summary>
    public required LlmFamily Family { get; init; }
    /// <summary>The config's <c>model_type</c>.</summary>
    public string ModelType { get; init; } = "";
    /// <summary>The config's <c>architectures</c>.</summary>
    public IReadOnlyList<string> Architectures { get; init; } = [];
    /// <summary>Vocabulary size.</summary>
    public required int VocabSize { get; init; }
    /// <summary>Model width.</summary>
    public required int HiddenSize { get; init; }
    /// <summary>MLP width (per expert for Mixtral).</summary>
    public required int IntermediateSize { get; init; }
    /// <summary>Decoder layers.</summary>
    public required int NumHiddenLayers { get; init; }
    /// <summary>Query heads.</summary>
    public required int NumAttentionHeads { get; init; }
    /// <summary>Key/value heads (fewer than query heads for GQA/MQA).</summary>
    public required int NumKeyValueHeads { get; init; }
    /// <summary>Per-head width (Gemma sets it independently of hidden/heads).</summary>
    public required int HeadDim { get; init; }
    /// <summary>RMSNorm epsilon.</summary>
    public double RmsNormEps { get; init; } = 1e-6;
    /// <summary>Rotary base θ.</summary>
    public double RopeTheta { get; init; } = 10000.0;
    /// <summary>Rotary scaling, when the config has one.</summary>
    public RopeScaling? RopeScaling { get; init; }
    /// <summary>Context length.</summary>
    public int MaxPositionEmbeddings { get; init; } = 4096;
    /// <summary>Whether lm_head shares the embedding matrix.</summary>
    public bool TieWordEmbeddings { get; init; }
    /// <summary>MLP activation (<c>silu</c>; Gemma: <c>gelu_pytorch_tanh</c> unless <c>hidden_activation</c> says otherwise).</summary>
    public string HiddenAct { get; init; } = "silu";
    /// <summary>Whether q/k/v/o projections have biases.</summary>
    public bool AttentionBias { get; init; }
    /// <summary>Whether MLP projections have biases.</summary>
    public bool MlpBias { get; init; }
    /// <summary>Mixtral: number of experts.</summary>
    public int NumLocalExperts { get; init; }
    /// <summary>Mixtral: experts per token.</summary>
    public int NumExpertsPerToken { get; init; }
    /// <summary>Sliding attention window, when set (Mixtral checkpoints of MGM have none).</summary>
    public int? SlidingWindow { get; init; }
    /// <summary>BOS id.</summary>
    public int? BosTokenId { get; init; }
    /// <summary>EOS ids (several allowed).</summary>
    public IReadOnlyList<int> EosTokenIds { get; init; } = [];
    /// <summary>Padding id.</summary>
    public int? PadTokenId { get; init; }
    /// <summary>Storage dtype named by the config (<c>torch_dtype</c> or <c>dtype</c>), when given.</summary>
    public torch.ScalarType? DType { get; init; }

    /// <summary>Reads config.json.</summary>
    /// <exception cref="ModelLoadException">Malformed, unknown model type, or a required field missing.</exception>
    public static LlmConfig Load(string path) => From(ConfigJson.Load(path));

    /// <summary>Parses config.json text.</summary>
    public static LlmConfig Parse(string json, string source = "<json>") => From(ConfigJson.Parse(json, source));

    internal static LlmConfig From(ConfigJson json)
    {
        var family = DetectFamily(json);
        int hidden = json.Int("hidden_size"), heads = json.Int("num_attention_heads");
        var ropeParameters = json.Section("rope_parameters");
        var config = new LlmConfig
        {
            Family = family,
            ModelType = json.OptionalString("model_type") ?? "",
            Architectures = json.Strings("architectures"),
            VocabSize = json.Int("vocab_size"),
            HiddenSize = hidden,
            IntermediateSize = json.Int("intermediate_size"),
            NumHiddenLayers = json.Int("num_hidden_layers"),
            NumAttentionHeads = heads,
            NumKeyValueHeads = json.OptionalInt("num_key_value_heads") ?? heads,
            HeadDim = json.OptionalInt("head_dim") ?? (hidden % heads == 0 ? hidden / heads : throw json.Invalid("num_attention_heads", $"a divisor of hidden_size {hidden} when head_dim is absent")),
            RmsNormEps = json.OptionalDouble("rms_norm_eps") ?? 1e-6,
            RopeTheta = ropeParameters?.OptionalDouble("rope_theta") ?? json.OptionalDouble("rope_theta") ?? 10000.0,
            RopeScaling = ReadRopeScaling(json.Section("rope_scaling") ?? ropeParameters, json.File),
            MaxPositionEmbeddings = json.OptionalInt("max_position_embeddings") ?? 4096,
            TieWordEmbeddings = json.OptionalBool("tie_word_embeddings") ?? family == LlmFamily.Gemma,
            HiddenAct = family == LlmFamily.Gemma
                ? json.OptionalString("hidden_activation") ?? "gelu_pytorch_tanh"
                : json.OptionalString("hidden_act") ?? "silu",
            AttentionBias = json.OptionalBool("attention_bias") ?? false,
            MlpBias = json.OptionalBool("mlp_bias") ?? false,
            NumLocalExperts = json.OptionalInt("num_local_experts") ?? 0,
            NumExpertsPerToken = json.OptionalInt("num_experts_per_tok") ?? 0,
            SlidingWindow = json.OptionalInt("sliding_window"),
            BosTokenId = json.OptionalInt("bos_token_id"),
            EosTokenIds = json.IntOrInts("eos_token_id"),
            PadTokenId = json.OptionalInt("pad_token_id"),
            DType = ParseDType(json.OptionalString("dtype", "torch_dtype"), json),
        };
        Validate(config, json);
        return config;
    }

    static LlmFamily DetectFamily(ConfigJson json)
    {
        var modelType = (json.OptionalString("model_type") ?? "").ToLowerInvariant();
        var architectures = json.Strings("architectures");
        if ((json.OptionalInt("num_local_experts") ?? 0) > 1) return LlmFamily.Mixtral;
        switch (modelType)
        {
            case "gemma" or "mgm_gemma" or "mini_gemini_gemma": return LlmFamily.Gemma;
            case "mixtral" or "mgm_mixtral" or "mini_gemini_mixtral": return LlmFamily.Mixtral;
            case "llama" or "mistral": return LlmFamily.Llama;
        }
        foreach (var arch in architectures)
        {
            if (arch.Contains("Gemma", StringComparison.Ordinal)) return LlmFamily.Gemma;
            if (arch.Contains("Mixtral", StringComparison.Ordinal)) return LlmFamily.Mixtral;
            if (arch.Contains("Llama", StringComparison.Ordinal) || arch.Contains("Mistral", StringComparison.Ordinal)) return LlmFamily.Llama;
        }
        // Mini-Gemini's generic types (mgm, llava_llama, mini_gemini) are Llama-based unless the fields say otherwise.
        if (modelType is "mgm" or "mini_gemini" or "llava" or "llava_llama" or "llava_llama_uni") return LlmFamily.Llama;
        throw ModelLoadException.Config(
            $"{json.File}: unknown model_type '{modelType}' (architectures: {string.Join(", ", architectures.DefaultIfEmpty("none"))}); " +
            "supported: llama, mistral, gemma, mixtral and Mini-Gemini's mgm, mgm_gemma, mgm_mixtral.", json.File, "model_type");
    }

    static RopeScaling? ReadRopeScaling(ConfigJson? section, string file)
    {
        if (section is null) return null;
        var type = section.OptionalString("rope_type", "type") ?? "default";
        if (type == "default") return null;
        if (type != "llama3")
            throw ModelLoadException.Config($"{file}: rope type '{type}' is not supported (default or llama3).", file, "rope_scaling");
        return new RopeScaling(type, section.Double("factor"), section.Double("low_freq_factor"), section.Double("high_freq_factor"),
            section.Int("original_max_position_embeddings"));
    }

    internal static torch.ScalarType? ParseDType(string? name, ConfigJson json) => name switch
    {
        null => null,
        "float32" or "fp32" => torch.ScalarType.Float32,
        "float16" or "fp16" or "half" => torch.ScalarType.Float16,
        "bfloat16" or "bf16" => torch.ScalarType.BFloat16,
        "float64" => torch.ScalarType.Float64,
        _ => throw json.Invalid(json.Has("dtype") ? "dtype" : "torch_dtype", "float32, float16 or bfloat16"),
    };

    static void Validate(LlmConfig c, ConfigJson json)
    {
        // Bounds far above every released model (Llama-3.1-405B: hidden 16384, 126 layers, 131072 positions), checked
        // before anything is allocated, so an absurd config is an error naming its key, not an allocator failure.
        void Size(int value, string key, int max)
        {
            if (value <= 0 || value > max) throw json.Invalid(key, $"a positive integer of at most {max}");
        }
        Size(c.VocabSize, "vocab_size", 4_194_304);
        Size(c.HiddenSize, "hidden_size", 65_536);
        Size(c.IntermediateSize, "intermediate_size", 1_048_576);
        Size(c.NumHiddenLayers, "num_hidden_layers", 1_024);
        Size(c.NumAttentionHeads, "num_attention_heads", 1_024);
        Size(c.NumKeyValueHeads, "num_key_value_heads", 1_024);
        Size(c.HeadDim, "head_dim", 4_096);
        Size(c.MaxPositionEmbeddings, "max_position_embeddings", 16_777_216);
        if (!(c.RmsNormEps > 0 && c.RmsNormEps < 1)) throw json.Invalid("rms_norm_eps", "a number in (0, 1)");
        if (!(c.RopeTheta > 0) || double.IsInfinity(c.RopeTheta)) throw json.Invalid("rope_theta", "a positive finite number");
        if (c.NumAttentionHeads % c.NumKeyValueHeads != 0)
            throw json.Invalid("num_key_value_heads", $"a divisor of num_attention_heads ({c.NumAttentionHeads})");
        if (c.HeadDim % 2 != 0) throw json.Invalid("head_dim", "even (rotary embeddings rotate pairs)");
        if (c.Family == LlmFamily.Mixtral && (c.NumLocalExperts < 1 || c.NumExpertsPerToken < 1 || c.NumExpertsPerToken > c.NumLocalExperts))
            throw json.Invalid("num_experts_per_tok", $"between 1 and num_local_experts ({c.NumLocalExperts})");
    }
}
