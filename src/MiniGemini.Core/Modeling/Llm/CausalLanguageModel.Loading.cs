using MiniGemini.Checkpoints;
using TorchSharp;
using static TorchSharp.torch;

namespace MiniGemini.Modeling;

/// <summary>Builds the decoder of the family a config names and fills it from a checkpoint.</summary>
public partial class CausalLanguageModel
{
    /// <summary>
    /// Keys an LLM loaded alone skips by rule: the Mini-Gemini parts that share the checkpoint root with it (vision
    /// towers, patch info mining, projector) and <see cref="IsSkippedByRule"/>; any other key it does not own is an error.
    /// </summary>
    internal static bool IsForeign(string key, bool tiedHead) =>
        MgmCheckpointKeys.Vision.Any(p => key.StartsWith(p, StringComparison.Ordinal)) || IsSkippedByRule(key, tiedHead);

    /// <summary>Keys a decoder's checkpoint holds that it does not load, by rule.</summary>
    internal static bool IsSkippedByRule(string key, bool tiedHead) =>
        // Checkpoints saved by transformers before 4.31 store the (recomputed) rotary frequencies.
        key.EndsWith(".rotary_emb.inv_freq", StringComparison.Ordinal)
        // A tied head reads the embeddings; a stored copy is ignored, as transformers does.
        || (tiedHead && key == "lm_head.weight");

    /// <summary>
    /// Loads the LLM stored under <paramref name="prefix"/> of <paramref name="source"/> (Mini-Gemini checkpoints keep
    /// it at the root, beside the vision keys). Weights are converted to <paramref name="dtype"/> (default: the
    /// config's dtype, else float32) on <paramref name="device"/> (default CPU).
    /// </summary>
    /// <exception cref="ModelLoadException">Keys missing, mis-shaped or unexpected, listed in the report.</exception>
    internal static CausalLanguageModel Load(ITensorSource source, LlmConfig config, string prefix = "", Device? device = null,
        ScalarType? dtype = null, LlmOptions? options = null, IReadOnlyList<int>? eosTokenIds = null)
    {
        RequireSizesOfTheWeights(source, config, prefix);
        var model = new CausalLanguageModel(config, options, device ?? CPU, dtype ?? config.DType ?? ScalarType.Float32, eosTokenIds);
        try
        {
            model.LoadWeights(source, prefix, options?.MapWeights, key => IsForeign(key, model.TiedHead));
            return model;
        }
        catch
        {
            model.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Fills the model from <paramref name="source"/> in one load, skipping the keys <paramref name="isForeign"/> names.
    /// When <paramref name="mapWeights"/> says so (by default from <see cref="LlmOptions.MapFromBytes"/> of the decoder's
    /// weights), every weight stored in its parameter's dtype in a file that can be mapped becomes a view of that file:
    /// the decoder's, and in a Mini-Gemini model also the towers', mining's and projector's, so that towers embedded in
    /// the model's shards (as released checkpoints carry them) take no new memory either.
    /// </summary>
    internal void LoadWeights(ITensorSource source, string prefix, bool? mapWeights, Func<string, bool> isForeign)
    {
        bool map = mapWeights ?? StoredBytes(source, prefix, TiedHead) >= LlmOptions.MapFromBytes;
        StateDictLoader.Load(this, source, prefix, new LoadOptions
        {
            IsForeign = isForeign,
            MayMap = _ => map,
        });
        if (map) SeparateIfLoadedApart();
    }

    /// <summary>Bytes of the LLM's tensors in the checkpoint.</summary>
    static long StoredBytes(ITensorSource source, string prefix, bool tiedHead) =>
        source.Keys.Where(k => k.StartsWith(prefix, StringComparison.Ordinal) && !IsForeign(k[prefix.Length..], tiedHead))
            .Sum(k => source.TryGetInfo(k, out var info) ? info.ByteLength : 0);

    /// <summary>
    /// Compares the config's sizes with the weights' before anything is built, so a config that claims more layers, or
    /// another width or vocabulary, than the checkpoint holds fails at once, naming the key, instead of first allocating
    /// a model of the claimed size.
    /// </summary>
    internal static void RequireSizesOfTheWeights(ITensorSource source, LlmConfig config, string prefix)
    {
        var embed = prefix + "model.embed_tokens.weight";
        if (source.TryGetInfo(embed, out var info) && info.Shape is [var rows, var width])
        {
            if (width != config.HiddenSize)
                throw ModelLoadException.Config($"config.json: hidden_size is {config.HiddenSize}, but {embed} in {source.Location} is {rows}×{width}.", key: "hidden_size");
            if (rows != config.VocabSize)
                throw ModelLoadException.Config($"config.json: vocab_size is {config.VocabSize}, but {embed} in {source.Location} is {rows}×{width}.", key: "vocab_size");
        }
        var layers = prefix + "model.layers.";
        int stored = source.Keys.Where(k => k.StartsWith(layers, StringComparison.Ordinal))
            .Select(k => k[layers.Length..]).Select(rest => int.TryParse(rest[..Math.Max(0, rest.IndexOf('.'))], out int i) ? i + 1 : 0)
            .DefaultIfEmpty(0).Max();
        if (stored > 0 && stored != config.NumHiddenLayers)
            throw ModelLoadException.Config($"config.json: num_hidden_layers is {config.NumHiddenLayers}, but {source.Location} holds {stored} layers.", key: "num_hidden_layers");
    }

    /// <summary>
    /// Loads a model folder: config.json, the checkpoint (<see cref="Checkpoint.Open"/>), and the stop ids of
    /// generation_config.json when present.
    /// </summary>
    public static CausalLanguageModel FromPretrained(string folder, Device? device = null, ScalarType? dtype = null, LlmOptions? options = null)
    {
        var config = LlmConfig.Load(Path.Combine(folder, "config.json"));
        var generationPath = Path.Combine(folder, "generation_config.json");
        var eos = File.Exists(generationPath) ? GenerationConfig.Load(generationPath).EosTokenIds : null;
        using var source = Checkpoint.Open(folder);
        return Load(source, config, "", device, dtype, options, eos);
    }

    /// <summary>
    /// A randomly initialised model (benchmarks, tests): matrices ~ N(0, std²), norm weights at their identity plus
    /// N(0, normJitter²), biases zero. Built directly on <paramref name="device"/> in <paramref name="dtype"/>.
    /// </summary>
    public static CausalLanguageModel CreateRandom(LlmConfig config, long seed, Device? device = null, ScalarType dtype = ScalarType.Float32,
        double std = 0.02, double normJitter = 0.0, LlmOptions? options = null)
    {
        device ??= CPU;
        var model = new CausalLanguageModel(config, options, device, dtype);
        // TorchSharp creates CPU generators only: on another device, seed that device's default generator instead.
        using var generator = device.type == DeviceType.CPU ? new Generator((ulong)seed) : null;
        if (generator is null) random.manual_seed(seed);
        using var _ = no_grad();
        foreach (var (name, p) in model.named_parameters())
        {
            if (p.ndim >= 2) p.normal_(0, std, generator);
            else if (name.EndsWith("norm.weight", StringComparison.Ordinal)) p.normal_(model.Architecture.NormIdentity, normJitter, generator);
            else p.zero_();
        }
        return model;
    }
}
