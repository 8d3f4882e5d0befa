namespace MiniGemini.Benchmarks.ShapedCheckpoints;

/// <summary>Where the two vision towers go.</summary>
public enum TowerPlacement
{
    /// <summary>As released: <c>model_zoo/OpenAI/…</c> folders beside the model, in the towers' own formats.</summary>
    Beside,
    /// <summary>Inside the MGM shards, under the keys MGM gives them (<c>model.vision_tower.vision_tower.*</c>, <c>model.vision_tower_aux.*</c>).</summary>
    Embedded,
}

/// <summary>The SentencePiece vocabulary layout a model's tokenizer.model has.</summary>
public enum VocabularyLayout
{
    /// <summary>Llama / Vicuna: 32000 pieces, &lt;unk&gt; 0, &lt;s&gt; 1, &lt;/s&gt; 2, byte pieces from 3.</summary>
    Llama,
    /// <summary>Gemma: 256000 pieces, &lt;pad&gt; 0, &lt;eos&gt; 1, &lt;bos&gt; 2, &lt;unk&gt; 3, &lt;start_of_turn&gt; 106, &lt;end_of_turn&gt; 107.</summary>
    Gemma,
}

/// <summary>
/// A released Mini-Gemini checkpoint's shape: its LLM, its towers and the <c>mm_*</c> settings of its config.json
/// (spec §8.1-8.2). Everything written for it (tensor lists, configs, tokenizer) derives from these values.
/// </summary>
public sealed record ShapedModel
{
    /// <summary>The folder name, as the HF repository names the model (<c>MGM-2B</c>, …).</summary>
    public required string Name { get; init; }
    /// <summary>The LLM.</summary>
    public required DecoderShape Decoder { get; init; }
    /// <summary>The config's <c>architectures</c> entry (names differ by upload date, spec §8.1).</summary>
    public required string Architecture { get; init; }
    /// <summary>The config's <c>model_type</c>.</summary>
    public required string ModelType { get; init; }
    /// <summary>The tokenizer's vocabulary layout (which also fixes BOS, EOS and PAD).</summary>
    public required VocabularyLayout Vocabulary { get; init; }
    /// <summary>RMSNorm epsilon.</summary>
    public required double RmsNormEps { get; init; }
    /// <summary>The LLM's context length.</summary>
    public required int MaxPositionEmbeddings { get; init; }
    /// <summary><c>hidden_act</c> as the released config writes it (Gemma: "gelu", see spec §9.2).</summary>
    public required string HiddenAct { get; init; }
    /// <summary>The high-resolution input side (768, HD 1536).</summary>
    public int ImageSizeAux { get; init; } = 768;
    /// <summary>LR crops per side (1, HD 2).</summary>
    public int ImageGrid { get; init; } = 1;
    /// <summary>Whether the HD models add a global view.</summary>
    public bool ImageGlobal { get; init; }
    /// <summary>The sequence length MGM truncates to (2048, HD 4096).</summary>
    public int TokenizerModelMaxLength { get; init; } = 2048;
    /// <summary>The CLIP tower.</summary>
    public ClipShape Clip { get; init; } = ClipShape.VitLarge14At336;
    /// <summary>The open_clip ConvNeXt tower.</summary>
    public OpenClipConvNeXtShape ConvNeXt { get; init; } = OpenClipConvNeXtShape.LargeD320;

    /// <summary>Where config.json says the CLIP tower is.</summary>
    public const string VisionTowerPath = "model_zoo/OpenAI/clip-vit-large-patch14-336";
    /// <summary>Where config.json says the ConvNeXt tower is.</summary>
    public const string VisionTowerAuxPath = "model_zoo/OpenAI/openclip-convnext-large-d-320-laion2B-s29B-b131K-ft-soup";

    /// <summary>The projector and mining widths: CLIP's width, the fused ConvNeXt width, the LLM's width.</summary>
    public MultimodalShape Multimodal => new(Clip.Vision.HiddenSize, ConvNeXt.Trunk.FusedChannels, Decoder.HiddenSize);

    /// <summary>BOS, EOS and PAD ids of the vocabulary layout.</summary>
    public (int Bos, int Eos, int Pad) SpecialIds => Vocabulary == VocabularyLayout.Gemma ? (2, 1, 0) : (1, 2, 0);

    /// <summary>MGM-2B: Gemma-2B (gemma-2b-it), normal resolution.</summary>
    public static ShapedModel Mgm2B { get; } = new()
    {
        Name = "MGM-2B", Decoder = DecoderShape.Gemma2B,
        Architecture = "MiniGeminiGemmaForCausalLM", ModelType = "mini_gemini_gemma",
        Vocabulary = VocabularyLayout.Gemma, RmsNormEps = 1e-6, MaxPositionEmbeddings = 8192, HiddenAct = "gelu",
    };

    /// <summary>MGM-7B: Vicuna-7B v1.5, normal resolution.</summary>
    public static ShapedModel Mgm7B { get; } = new()
    {
        Name = "MGM-7B", Decoder = DecoderShape.Vicuna7B,
        Architecture = "MGMLlamaForCausalLM", ModelType = "mgm",
        Vocabulary = VocabularyLayout.Llama, RmsNormEps = 1e-5, MaxPositionEmbeddings = 4096, HiddenAct = "silu",
    };

    /// <summary>MGM-7B-HD: MGM-7B with a 1536-px HR input, a 2×2 LR grid and a global view.</summary>
    public static ShapedModel Mgm7BHd { get; } = Mgm7B with
    {
        Name = "MGM-7B-HD", ImageSizeAux = 1536, ImageGrid = 2, ImageGlobal = true, TokenizerModelMaxLength = 4096,
    };

    /// <summary>The models by their command-line names.</summary>
    public static IReadOnlyDictionary<string, ShapedModel> ByOption { get; } = new Dictionary<string, ShapedModel>(StringComparer.OrdinalIgnoreCase)
    {
        ["mgm-2b"] = Mgm2B, ["mgm-7b"] = Mgm7B, ["mgm-7b-hd"] = Mgm7BHd,
    };

    /// <summary>
    /// The MGM checkpoint's tensors (bf16), in the state-dict order that decides which shard holds what: the LLM body,
    /// the embedded towers when asked for, the projector, the mining projections, then lm_head.
    /// </summary>
    public TensorList CheckpointTensors(TowerPlacement towers)
    {
        var list = new TensorList(ElementType.BFloat16);
        Decoder.AddBody(list);
        if (towers == TowerPlacement.Embedded)
            Clip.AddVisionTower(list.Under("model.vision_tower.vision_tower.vision_model."), positionIds: false);
        Multimodal.AddProjector(list);
        if (towers == TowerPlacement.Embedded)
        {
            ConvNeXt.Trunk.AddStem(list.Under("model.vision_tower_aux.vision_stem."));
            ConvNeXt.Trunk.AddStages(list.Under("model.vision_tower_aux.vision_stages."));
        }
        Multimodal.AddMining(list);
        Decoder.AddHead(list);
        return list;
    }

    /// <summary>The CLIP tower file's tensors (fp32), as <c>openai/clip-vit-large-patch14-336</c> ships them.</summary>
    public TensorList ClipFileTensors()
    {
        var list = new TensorList(ElementType.Float32);
        Clip.AddFullModel(list);
        return list;
    }

    /// <summary>The open_clip ConvNeXt file's tensors (fp32), as the laion release ships them.</summary>
    public TensorList ConvNeXtFileTensors()
    {
        var list = new TensorList(ElementType.Float32);
        ConvNeXt.AddFullModel(list);
        return list;
    }
}
