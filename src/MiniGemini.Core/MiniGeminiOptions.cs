using Microsoft.Extensions.Logging;
using MiniGemini.Generation;
using MiniGemini.Modeling;
using MiniGemini.Vision;

namespace MiniGemini;

/// <summary>Floating-point precision of the model weights and activations.</summary>
public enum ModelPrecision
{
    /// <summary>32-bit floats: exact parity with the PyTorch reference; the CPU default.</summary>
    Float32,
    /// <summary>bfloat16: half the memory, the usual GPU choice (MGM checkpoints are stored in bf16).</summary>
    BFloat16,
    /// <summary>float16, as MGM's own inference scripts load the models.</summary>
    Float16,
}

/// <summary>
/// Progress while a model loads: once when a stage starts, then while it reads weights (after every tensor, at most
/// about a hundred times per module), so that a large language model is not one silent step.
/// </summary>
/// <param name="Stage">What is loading (e.g. "language model").</param>
/// <param name="Completed">Stages done so far.</param>
/// <param name="Total">Stages in all.</param>
public readonly record struct LoadProgress(string Stage, int Completed, int Total)
{
    /// <summary>Bytes of weights this stage has read so far (as stored in the checkpoint).</summary>
    public long BytesRead { get; init; }

    /// <summary>
    /// Bytes of weights of the modules this stage has started to load (a stage that loads two modules, such as mining
    /// and projector, adds the second one's when it starts); 0 for a stage that reads none (the tokenizer).
    /// </summary>
    public long BytesTotal { get; init; }

    /// <summary>Fraction of the stages done, 0..1.</summary>
    public double Fraction => Total == 0 ? 1 : (double)Completed / Total;
}

/// <summary>
/// Everything needed to build a <see cref="MiniGeminiModel"/>; what <see cref="MiniGeminiBuilder"/> fills in and what
/// <c>services.AddMiniGemini(...)</c> (MiniGemini.Hosting) binds. Paths left null are resolved from the model folder's config.json.
/// </summary>
public sealed class MiniGeminiOptions
{
    /// <summary>Folder of a Mini-Gemini checkpoint (config.json, weights, tokenizer).</summary>
    public string? ModelPath { get; set; }

    /// <summary>
    /// When composing from parts: a language-model folder (config.json, weights, tokenizer) used instead of the LLM of
    /// <see cref="ModelPath"/>.
    /// </summary>
    public string? LanguageModelPath { get; set; }

    /// <summary>
    /// When composing from parts: a checkpoint holding the mining and projector weights
    /// (<c>vlm_uni_*</c>, <c>mm_projector.*</c>, with or without a <c>model.</c> prefix).
    /// </summary>
    public string? MultimodalWeightsPath { get; set; }

    /// <summary>Tokenizer folder; null = the language model's folder.</summary>
    public string? TokenizerPath { get; set; }

    /// <summary>CLIP tower folder; overrides <c>mm_vision_tower</c> of config.json.</summary>
    public string? VisionTowerPath { get; set; }

    /// <summary>ConvNeXt tower folder; overrides <c>mm_vision_tower_aux</c> of config.json.</summary>
    public string? AuxVisionTowerPath { get; set; }

    /// <summary>
    /// Extra folders in which a tower named by config.json is looked for by its last path segment (released configs
    /// name <c>model_zoo/OpenAI/clip-vit-large-patch14-336</c>, which rarely exists as written).
    /// </summary>
    public IList<string> TowerSearchRoots { get; private set; } = new List<string>();

    /// <summary>Torch device: <c>cpu</c>, <c>cuda</c>, <c>cuda:1</c>, or <c>auto</c> (CUDA when available, else the CPU).</summary>
    public string Device { get; set; } = "cpu";

    /// <summary>Precision of weights and activations.</summary>
    public ModelPrecision Precision { get; set; } = ModelPrecision.Float32;

    /// <summary>
    /// Whether the weights stored in the precision the model runs in on the CPU are memory-mapped from their files
    /// instead of copied: the LLM's, and the vision towers' where the checkpoint embeds them (as released ones do) or
    /// their own safetensors files hold them in that precision. Mapped weights take no allocation and no copy (they are
    /// the file's pages, shared with the page cache and with other processes), but where the page cache holds the files
    /// in 4 KiB pages rather than 2 MiB ones, decoding (and encoding, with mapped towers) reads the weights more slowly
    /// than from a copy in huge pages; the log says so at load (event 102, docs/benchmarks.md#real-sizes). Null (the
    /// default): mapped when the language model's weights are 1 GiB or more, copied below.
    /// </summary>
    public bool? MapWeights { get; set; }

    /// <summary>
    /// Whether each generated token runs the LLM as one compiled TorchScript function instead of op by op (same results,
    /// less host time per token; docs/benchmarks.md#compiled-decode-step). Null (the default): compiled on GPUs, op by
    /// op on CPUs, where it gains little; true: compiled on any device; false: op by op. A compiled step that fails
    /// with a libtorch error is replaced by the op-by-op step, with a warning in the log.
    /// </summary>
    public bool? CompileDecodeStep { get; set; }

    /// <summary>Conversation template name (vicuna_v1, gemma, mistral_instruct, chatml_direct, llama_3); null = from the model.</summary>
    public string? Template { get; set; }

    /// <summary>High-resolution input side; null = <c>image_size_aux</c> of config.json.</summary>
    public int? ImageSizeAux { get; set; }

    /// <summary>LR crops per side (2 for HD); null = <c>image_grid</c> of config.json.</summary>
    public int? ImageGrid { get; set; }

    /// <summary>Whether HD models add a global view; null = <c>image_global</c> of config.json.</summary>
    public bool? ImageGlobal { get; set; }

    /// <summary>Images with more pixels than this are refused before decoding (default 64 megapixels).</summary>
    public long MaxImagePixels { get; set; } = ImagePreprocessOptions.DefaultMaxImagePixels;

    /// <summary>
    /// Rotate images by their EXIF orientation before preprocessing. Off by default, as in Mini-Gemini (PIL's
    /// <c>Image.open</c> ignores the tag), so answers match the reference; turn on for camera photos.
    /// </summary>
    public bool ApplyExifOrientation { get; set; }

    /// <summary>
    /// Bytes of memory (on the model's device) kept for reuse across requests: the image tokens of recent pictures and
    /// the key/value cache of recent single-prompt requests with their answers, least recently used out first. A
    /// follow-up turn, whose conversation extends an earlier one, then encodes no image seen before and prefills only
    /// the positions after the longest common prefix; answers are those a recomputation gives. 0 turns reuse off.
    /// Default 1 GiB (a 2,000-position conversation of a 7B model in bf16 takes 1 GiB; of the bundled model, 4 MB).
    /// </summary>
    public long ConversationCacheBytes { get; set; } = DefaultConversationCacheBytes;

    /// <summary>The default of <see cref="ConversationCacheBytes"/>: 1 GiB.</summary>
    public const long DefaultConversationCacheBytes = 1L << 30;

    /// <summary>Receives load and generation diagnostics.</summary>
    public ILoggerFactory? LoggerFactory { get; set; }

    /// <summary>Receives load progress.</summary>
    public IProgress<LoadProgress>? LoadProgress { get; set; }

    /// <summary>Renders the captions of image-generation answers; null = no rendering (the caption is still returned).</summary>
    public Txt2ImgBridge? ImageGenerator { get; set; }

    /// <summary>A copy whose search-root list is its own.</summary>
    internal MiniGeminiOptions Copy()
    {
        var copy = (MiniGeminiOptions)MemberwiseClone();
        copy.TowerSearchRoots = new List<string>(TowerSearchRoots);
        return copy;
    }
}
