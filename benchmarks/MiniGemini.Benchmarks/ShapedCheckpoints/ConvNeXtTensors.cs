namespace MiniGemini.Benchmarks.ShapedCheckpoints;

/// <summary>
/// A timm ConvNeXt trunk as open_clip builds it (spec §3.2-3.5): 4×4 stem conv + LayerNorm2d, then per stage an
/// optional downsample (LayerNorm2d, 2×2 conv) and blocks of depthwise 7×7 conv, LayerNorm, MLP 4× and layer-scale
/// <c>gamma</c>. The head timm keeps after <c>reset_classifier(0)</c> is a LayerNorm2d over the last stage.
/// </summary>
/// <param name="Depths">Blocks per stage.</param>
/// <param name="Dims">Channels per stage.</param>
public sealed record ConvNeXtShape(IReadOnlyList<int> Depths, IReadOnlyList<int> Dims)
{
    /// <summary>timm <c>convnext_large</c> (open_clip <c>convnext_large_d_320</c>): depths 3/3/27/3, dims 192/384/768/1536.</summary>
    public static ConvNeXtShape Large { get; } = new([3, 3, 27, 3], [192, 384, 768, 1536]);

    /// <summary>timm's layer-scale init (<c>ls_init_value</c>).</summary>
    public const double LayerScaleInit = 1e-6;

    /// <summary>Channels of the fused map MGM builds from all stages (mm_hidden_size_aux: 2880 for Large).</summary>
    public int FusedChannels => Dims.Sum();

    /// <summary>The stem's tensors under <paramref name="stem"/> (<c>stem.</c> in timm, <c>vision_stem.</c> in MGM).</summary>
    public void AddStem(TensorList stem)
    {
        stem.Conv2d("0", 3, Dims[0], 4).LayerNorm("1", Dims[0]);
    }

    /// <summary>The stages' tensors under <paramref name="stages"/> (<c>stages.</c> in timm, <c>vision_stages.</c> in MGM).</summary>
    public void AddStages(TensorList stages)
    {
        for (int i = 0; i < Depths.Count; i++)
        {
            var stage = stages.Under($"{i}.");
            int c = Dims[i];
            // Stage 0 keeps the stem's stride and width: its downsample is an Identity without tensors.
            if (i > 0) stage.LayerNorm("downsample.0", Dims[i - 1]).Conv2d("downsample.1", Dims[i - 1], c, 2);
            for (int j = 0; j < Depths[i]; j++)
            {
                // A module's own parameters come before its children's in the state dict: gamma first.
                stage.Under($"blocks.{j}.")
                     .Add("gamma", Init.Constant(LayerScaleInit), c)
                     .Conv2d("conv_dw", c, c, 7, groups: c)
                     .LayerNorm("norm", c)
                     .Linear("mlp.fc1", c, 4L * c)
                     .Linear("mlp.fc2", 4L * c, c);
            }
        }
    }
}

/// <summary>open_clip's own text transformer (<c>TextTransformer</c> folded into <c>CLIP</c>, keys at the root).</summary>
/// <param name="Width">Width.</param>
/// <param name="Layers">Residual blocks.</param>
/// <param name="ContextLength">Positions.</param>
/// <param name="VocabSize">Token vocabulary.</param>
public sealed record OpenClipTextShape(int Width, int Layers, int ContextLength, int VocabSize)
{
    /// <summary>The root-level parameters open_clip's CLIP registers itself: positions and projection (logit_scale is the caller's).</summary>
    public void AddRootParameters(TensorList list, int embedDim)
    {
        list.Add("positional_embedding", Init.Uniform, ContextLength, Width)
            .Add("text_projection", Init.Uniform, Width, embedDim);
    }

    /// <summary>The residual blocks, token embedding and final norm.</summary>
    public void AddModules(TensorList list)
    {
        for (int i = 0; i < Layers; i++)
        {
            // nn.MultiheadAttention keeps q, k and v in one packed in_proj.
            list.Under($"transformer.resblocks.{i}.")
                .LayerNorm("ln_1", Width)
                .Add("attn.in_proj_weight", Init.Uniform, 3L * Width, Width)
                .Add("attn.in_proj_bias", Init.Zero, 3L * Width)
                .Linear("attn.out_proj", Width, Width)
                .LayerNorm("ln_2", Width)
                .Linear("mlp.c_fc", Width, 4L * Width)
                .Linear("mlp.c_proj", 4L * Width, Width);
        }
        list.Embedding("token_embedding", VocabSize, Width)
            .LayerNorm("ln_final", Width);
    }
}

/// <summary>
/// The open_clip model MGM's aux tower comes from, <c>convnext_large_d_320</c> (laion2B-s29B-b131K-ft-soup), as its
/// <c>open_clip_pytorch_model.bin</c> holds it: the timm trunk at <c>visual.trunk.</c> with its head norm, the "d"
/// MLP projection head <c>visual.head.mlp</c> (fc1 1536→1536 with bias, fc2 1536→768 without: <c>timm_proj_bias</c>
/// is false), the text transformer at the root and <c>logit_scale</c>.
/// </summary>
/// <param name="Trunk">The ConvNeXt trunk.</param>
/// <param name="Text">The text tower.</param>
/// <param name="EmbedDim">Joint embedding width.</param>
public sealed record OpenClipConvNeXtShape(ConvNeXtShape Trunk, OpenClipTextShape Text, int EmbedDim)
{
    /// <summary>convnext_large_d_320: ConvNeXt-Large, text 768 wide with 16 layers (12 heads), embedding 768.</summary>
    public static OpenClipConvNeXtShape LargeD320 { get; } = new(ConvNeXtShape.Large, new OpenClipTextShape(768, 16, 77, 49_408), 768);

    /// <summary>Text attention heads (open_clip's <c>text_cfg.heads</c>; not visible in the shapes).</summary>
    public const int TextHeads = 12;

    /// <summary>The whole state dict, in open_clip's order (the model's own parameters first, then its modules).</summary>
    public void AddFullModel(TensorList list)
    {
        Text.AddRootParameters(list, EmbedDim);
        list.Add("logit_scale", Init.Constant(Math.Log(1 / 0.07)));
        var trunk = list.Under("visual.trunk.");
        Trunk.AddStem(trunk.Under("stem."));
        Trunk.AddStages(trunk.Under("stages."));
        int last = Trunk.Dims[^1];
        trunk.LayerNorm("head.norm", last);
        list.Under("visual.head.mlp.")
            .Linear("fc1", last, 2L * EmbedDim)
            .Linear("fc2", 2L * EmbedDim, EmbedDim, bias: false);
        Text.AddModules(list);
    }
}
