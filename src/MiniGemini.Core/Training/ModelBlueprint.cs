using System.Text.Json.Nodes;
using MiniGemini.Checkpoints;
using MiniGemini.Modeling;
using MiniGemini.Text.SentencePiece;
using MiniGemini.Vision;
using TorchSharp;
using static TorchSharp.torch;

namespace MiniGemini.Training;

/// <summary>
/// The sizes of a new Mini-Gemini to train from scratch: a CLIP ViT on the LR view, a ConvNeXt on the HR image with
/// patch info mining (absent for an LR-only model, as LLaVA), a projector and a Llama LLM.
/// <see cref="Create"/> writes it as an MGM checkpoint folder with random weights and a word-level SentencePiece
/// tokenizer, which <see cref="MiniGeminiBuilder.FromPretrained"/> loads like any other.
/// </summary>
public sealed record ModelBlueprint
{
    /// <summary>Side of the LR view (the CLIP tower's image size).</summary>
    public int LrImageSize { get; init; } = 112;
    /// <summary>CLIP patch side; the LR view has (LrImageSize / PatchSize)² tokens (default: 2×2, one per quadrant).</summary>
    public int PatchSize { get; init; } = 56;
    /// <summary>CLIP width (<c>mm_hidden_size</c>).</summary>
    public int VisionWidth { get; init; } = 128;
    /// <summary>CLIP layers; the features are the last layer's (<c>mm_vision_select_layer</c> −1).</summary>
    public int VisionLayers { get; init; } = 2;
    /// <summary>CLIP attention heads.</summary>
    public int VisionHeads { get; init; } = 4;
    /// <summary>Side of the HR image (<c>image_size_aux</c>).</summary>
    public int HrImageSize { get; init; } = 448;
    /// <summary>ConvNeXt channels per stage; null makes an LR-only model (no HR tower, no mining).</summary>
    public IReadOnlyList<int>? AuxDims { get; init; } = [24, 48, 96, 96];
    /// <summary>ConvNeXt blocks per stage.</summary>
    public IReadOnlyList<int> AuxDepths { get; init; } = [1, 1, 1, 1];
    /// <summary>LLM width.</summary>
    public int Hidden { get; init; } = 256;
    /// <summary>LLM decoder layers.</summary>
    public int Layers { get; init; } = 4;
    /// <summary>LLM attention heads.</summary>
    public int Heads { get; init; } = 4;
    /// <summary>LLM MLP width.</summary>
    public int Intermediate { get; init; } = 512;
    /// <summary>LLM context (<c>max_position_embeddings</c>).</summary>
    public int ContextLength { get; init; } = 512;
    /// <summary>
    /// <c>mm_projector_type</c>. <c>linear</c> by default: a model trained from scratch keeps the projector at its
    /// initialisation while the LLM learns (docs/training.md), and a random linear map keeps everything that a linear
    /// read-out finds in the image tokens, where a random <c>mlp2x_gelu</c> loses part of it.
    /// </summary>
    public string Projector { get; init; } = "linear";

    /// <summary>Whether the model has the HR tower and patch info mining.</summary>
    public bool HasAuxTower => AuxDims is not null;

    /// <summary>The CLIP tower's folder name beside the model (config.json names it as <c>mm_vision_tower</c>).</summary>
    public const string VisionTowerName = "clip-vit";

    /// <summary>
    /// Writes a new model to <paramref name="folder"/>: config.json (MGM keys), <c>clip-vit/config.json</c>, a
    /// word-level tokenizer.model whose pieces are the words of <paramref name="tokenizerCorpus"/>, and
    /// model.safetensors with random weights (seeded: the same seed gives the same bytes).
    /// </summary>
    /// <exception cref="MiniGeminiTrainingException">The folder exists and is not empty, or the sizes do not fit together.</exception>
    public void Create(string folder, IEnumerable<string> tokenizerCorpus, long seed)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(folder);
        ArgumentNullException.ThrowIfNull(tokenizerCorpus);
        Check();
        if (Directory.Exists(folder) && Directory.EnumerateFileSystemEntries(folder).Any())
            throw new MiniGeminiTrainingException($"The model folder {Path.GetFullPath(folder)} already exists and is not empty.");
        Directory.CreateDirectory(Path.Combine(folder, VisionTowerName));
        SentencePieceModelWriter.WriteWordLevel(Path.Combine(folder, "tokenizer.model"), tokenizerCorpus);
        var tokenizer = MiniGeminiTokenizer.FromFolder(folder);
        File.WriteAllText(Path.Combine(folder, VisionTowerName, "config.json"), ClipConfigJson().ToJsonString(Indented));
        File.WriteAllText(Path.Combine(folder, "config.json"), ModelConfigJson(tokenizer.VocabSize).ToJsonString(Indented));

        var config = MgmConfig.Load(Path.Combine(folder, "config.json"));
        var clipConfig = ClipVisionConfig.Load(Path.Combine(folder, VisionTowerName, "config.json"));
        using var generator = new Generator((ulong)seed);
        using var model = new MiniGeminiForCausalLM(config, clipConfig, AuxDims is null ? null : new ConvNeXtConfig { Dims = AuxDims, Depths = AuxDepths },
            ImagePreprocessOptions.ForModel(config with { ImageSizeAux = config.ImageSizeAux ?? LrImageSize }, clipConfig));
        var parameters = model.CheckpointParameters().ToList();
        using (no_grad())
            foreach (var (key, p) in parameters) Initialise(key, p, generator);
        using var scope = NewDisposeScope();
        SafetensorsWriter.Write(Path.Combine(folder, "model.safetensors"), parameters.ToDictionary(x => x.Key, x => (Tensor)x.Parameter),
            new Dictionary<string, string> { ["format"] = "pt" });
    }

    static readonly System.Text.Json.JsonSerializerOptions Indented = new() { WriteIndented = true };

    /// <summary>
    /// GPT-2/timm-style initialisation: matrices N(0, 0.02²) (residual outputs scaled by 1/√(2·layers)), norms 1,
    /// biases 0; the CLIP position embedding N(0, 1); patch info mining's projections as PyTorch initialises an
    /// <c>nn.Linear</c>, U(−1/√fan_in, 1/√fan_in), which is where MGM's stage 1 starts them.
    /// </summary>
    /// <remarks>
    /// A CLIP patch embedding of this fan-in (3·P² inputs) gives tokens of size ≈ 0.02·√(3·P²) ≫ 0.02, so a position
    /// embedding at 0.02 would leave the tokens of a picture nearly unaware of where they are, and every question that
    /// names a position would first have to learn it. Mining's query and key at 0.02 would give attention scores of
    /// spread ≈ 0.07 over a region of thousands of HR features: a uniform average in which a digit a few features wide
    /// is lost, and from which the gradient that sharpens the attention is small.
    /// </remarks>
    void Initialise(string key, Tensor p, Generator generator)
    {
        if (key.EndsWith("position_embedding.weight", StringComparison.Ordinal)) p.normal_(0, 1.0, generator);
        else if (key.StartsWith(TrainingStage.MiningPrefix, StringComparison.Ordinal) && p.dim() == 2)
        {
            double bound = 1 / Math.Sqrt(p.shape[1]);
            p.uniform_(-bound, bound, generator);
        }
        else if (p.dim() >= 2 || key.EndsWith("class_embedding", StringComparison.Ordinal))
        {
            bool residualOutput = key.EndsWith("o_proj.weight", StringComparison.Ordinal) || key.EndsWith("down_proj.weight", StringComparison.Ordinal);
            p.normal_(0, residualOutput ? 0.02 / Math.Sqrt(2.0 * Layers) : 0.02, generator);
        }
        else if (key.EndsWith("bias", StringComparison.Ordinal)) p.zero_();
        else if (key.EndsWith("gamma", StringComparison.Ordinal))
        {
            using var layerScale = 0.1.ToScalar();
            p.fill_(layerScale);                                                // ConvNeXt layer scale
        }
        else p.fill_(Scalars.OneDouble);                                        // LayerNorm / RMSNorm weights
    }

    void Check()
    {
        void Require(bool ok, string what)
        {
            if (!ok) throw new MiniGeminiTrainingException($"ModelBlueprint: {what}.");
        }
        Require(LrImageSize > 0 && PatchSize > 0 && LrImageSize % PatchSize == 0, $"LrImageSize {LrImageSize} must be a positive multiple of PatchSize {PatchSize}");
        Require(VisionWidth > 0 && VisionHeads > 0 && VisionWidth % VisionHeads == 0, $"VisionWidth {VisionWidth} must split into {VisionHeads} heads");
        Require(Hidden > 0 && Heads > 0 && Hidden % Heads == 0 && Hidden / Heads % 2 == 0, $"Hidden {Hidden} must split into {Heads} heads of even width");
        Require(VisionLayers >= 1 && Layers >= 1 && Intermediate >= 1 && ContextLength >= 16, "layer counts, MLP width and context must be positive (context ≥ 16)");
        if (AuxDims is not null)
        {
            int tokensPerSide = LrImageSize / PatchSize;
            Require(AuxDims.Count == AuxDepths.Count && AuxDims.Count > 0 && AuxDims.All(d => d > 0) && AuxDepths.All(d => d > 0), "AuxDims and AuxDepths must be positive and as many");
            Require(HrImageSize % 4 == 0 && HrImageSize / 4 % tokensPerSide == 0 && HrImageSize % (4 << (AuxDims.Count - 1)) == 0,
                $"HrImageSize {HrImageSize} must give a ConvNeXt map (size / 4) that splits into {tokensPerSide}×{tokensPerSide} regions");
        }
    }

    JsonObject ClipConfigJson() => new()
    {
        ["architectures"] = new JsonArray("CLIPVisionModel"),
        ["model_type"] = "clip_vision_model",
        ["hidden_act"] = "quick_gelu",
        ["hidden_size"] = VisionWidth,
        ["intermediate_size"] = 4 * VisionWidth,
        ["num_attention_heads"] = VisionHeads,
        ["num_hidden_layers"] = VisionLayers,
        ["image_size"] = LrImageSize,
        ["patch_size"] = PatchSize,
        ["num_channels"] = 3,
        ["layer_norm_eps"] = 1e-5,
        ["projection_dim"] = VisionWidth,
        ["torch_dtype"] = "float32",
    };

    JsonObject ModelConfigJson(int vocabSize)
    {
        var json = new JsonObject
        {
            ["architectures"] = new JsonArray("MGMLlamaForCausalLM"),
            ["model_type"] = "mgm",
            ["hidden_act"] = "silu",
            ["hidden_size"] = Hidden,
            ["intermediate_size"] = Intermediate,
            ["num_attention_heads"] = Heads,
            ["num_key_value_heads"] = Heads,
            ["num_hidden_layers"] = Layers,
            ["head_dim"] = Hidden / Heads,
            ["max_position_embeddings"] = ContextLength,
            ["rms_norm_eps"] = 1e-5,
            ["rope_theta"] = 10000.0,
            ["vocab_size"] = vocabSize,
            ["bos_token_id"] = 1,
            ["eos_token_id"] = 2,
            ["pad_token_id"] = 0,
            ["tie_word_embeddings"] = false,
            ["attention_bias"] = false,
            ["mlp_bias"] = false,
            ["torch_dtype"] = "float32",
            ["image_aspect_ratio"] = "pad",
            ["image_grid"] = 1,
            ["image_global"] = false,
            ["mm_hidden_size"] = VisionWidth,
            ["mm_projector_type"] = Projector,
            ["mm_use_im_start_end"] = false,
            ["mm_vision_select_feature"] = "patch",
            ["mm_vision_select_layer"] = -1,
            ["mm_vision_tower"] = VisionTowerName,
            ["tokenizer_model_max_length"] = ContextLength,
            ["tokenizer_padding_side"] = "right",
            ["use_mm_proj"] = true,
        };
        if (AuxDims is not null)
        {
            json["image_size_aux"] = HrImageSize;
            json["mm_hidden_size_aux"] = AuxDims.Sum();
            json["mm_vision_tower_aux"] = "openclip-convnext";
        }
        return json;
    }
}
