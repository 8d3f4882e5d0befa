using MiniGemini.Checkpoints;
using MiniGemini.Text;
using MiniGemini.Vision;
using TorchSharp;
using static TorchSharp.torch;

namespace MiniGemini.Modeling;

/// <summary>What the image side produced for a batch of images; intermediates only when asked for.</summary>
internal sealed class ImageFeatures : IDisposable
{
    /// <summary>CLIP patch features of the LR views, <c>[B·V, N, D]</c>, views as [crops…, globals].</summary>
    public Tensor? LrFeatures { get; init; }
    /// <summary>The fused ConvNeXt map <c>[B, Da, H/4, W/4]</c>.</summary>
    public Tensor? HrFused { get; init; }
    /// <summary>LR + mined, <c>[B, V·N, D]</c>, tokens per image as [global, crops…].</summary>
    public Tensor? Mined { get; init; }
    /// <summary>Projected image tokens <c>[B, V·N, H]</c>, ready to splice.</summary>
    public required Tensor Tokens { get; init; }

    public void Dispose()
    {
        LrFeatures?.Dispose();
        HrFused?.Dispose();
        Mined?.Dispose();
        Tokens.Dispose();
    }
}

/// <summary>
/// Mini-Gemini as one module whose state-dict keys are the checkpoint's (MGM's <c>MGMLlamaForCausalLM</c>):
/// <c>model.{embed_tokens, layers, norm, vision_tower, vision_tower_aux, vlm_uni_query_projector, vlm_uni_aux_projector,
/// vlm_uni_val_projector, mm_projector}</c> and <c>lm_head</c>. The image side (<see cref="GetImageFeatures"/>): the LR
/// views are derived from the normalized HR tensor (as MGM's CLI does), CLIP encodes them, the ConvNeXt encodes the HR
/// tensor and fuses its stages, patch info mining lets each LR token attend to its own HR region, and the projector maps
/// the result to the LLM's width; <see cref="EmbedInputs"/> splices the image tokens into the prompt's embeddings, which
/// the language model (<see cref="CausalLanguageModel.Forward"/>) then runs on. Without a ConvNeXt (an LR-only model, as
/// LLaVA) the CLIP features go straight to the projector.
/// </summary>
public sealed class MiniGeminiForCausalLM : CausalLanguageModel
{
    /// <summary>
    /// Builds the model from its parts' configurations, uninitialised: the language model directly on
    /// <paramref name="device"/> in <paramref name="dtype"/>, the vision parts on the CPU (move them with
    /// <see cref="CausalLanguageModel.To"/> or load the weights where they are).
    /// </summary>
    /// <param name="config">The MGM config.json (its LLM part, <c>mm_*</c> sizes and projector type).</param>
    /// <param name="clip">The CLIP tower's config.</param>
    /// <param name="convNeXt">The ConvNeXt trunk's config; null for an LR-only model (no aux tower, no mining).</param>
    /// <param name="views">How images are cut into views: LR side, grid and global view.</param>
    /// <param name="options">Decoder switches.</param>
    /// <param name="device">The language model's device (CPU by default).</param>
    /// <param name="dtype">The language model's dtype.</param>
    public MiniGeminiForCausalLM(MgmConfig config, ClipVisionConfig clip, ConvNeXtConfig? convNeXt, ImagePreprocessOptions views,
        LlmOptions? options = null, Device? device = null, ScalarType dtype = ScalarType.Float32)
        : base(config.Llm, options, device ?? CPU, dtype, null, arch => new MiniGeminiBackbone(arch, device ?? CPU, dtype,
            new ClipVisionTransformer(clip), convNeXt is null ? null : new ConvNeXtEncoder(convNeXt),
            convNeXt is null ? null : PatchInfoMining.FromConfig(config), VisionProjector.FromConfig(config)))
    {
        MgmConfig = config;
        Views = views;
    }

    /// <summary>The MGM configuration.</summary>
    public MgmConfig MgmConfig { get; }

    /// <summary>How images are cut into views (LR side, grid, global view).</summary>
    public ImagePreprocessOptions Views { get; }

    MiniGeminiBackbone Backbone => (MiniGeminiBackbone)model;

    /// <summary>The CLIP tower (<c>model.vision_tower.vision_tower.vision_model</c>).</summary>
    public ClipVisionTransformer VisionTower => Backbone.Clip;

    /// <summary>The ConvNeXt tower (<c>model.vision_tower_aux</c>); null for an LR-only model.</summary>
    public ConvNeXtEncoder? AuxVisionTower => Backbone.ConvNeXt;

    /// <summary>Patch info mining (<c>model.vlm_uni_*</c>); null for an LR-only model.</summary>
    public PatchInfoMining? Mining => Backbone.Mining;

    /// <summary>The projector (<c>model.mm_projector</c>).</summary>
    public VisionProjector Projector => Backbone.Projector;

    /// <summary>
    /// Every parameter under its checkpoint key (<c>named_parameters</c>), the vision parts first (CLIP, ConvNeXt stem
    /// and stages, mining, projector, then the LLM), the order in which a new model's weights are drawn from one seed.
    /// </summary>
    internal IEnumerable<(string Key, TorchSharp.Modules.Parameter Parameter)> CheckpointParameters()
    {
        string[] order = [MgmCheckpointKeys.ClipTower, MgmCheckpointKeys.AuxStem, MgmCheckpointKeys.AuxStages, MgmCheckpointKeys.Mining, MgmCheckpointKeys.Projector];
        int Group(string key) => Array.FindIndex(order, p => key.StartsWith(p, StringComparison.Ordinal)) is var i and >= 0 ? i : order.Length;
        return named_parameters().Select(x => (x.name, x.parameter)).OrderBy(x => Group(x.name));
    }

    /// <summary>
    /// Fills the whole tree from <paramref name="source"/>, whose keys are the tree's (a checkpoint, or files seen through
    /// a key-rename table), in one load. LLaVA-style checkpoints may store an image_newline MGM does not use, CLIP towers
    /// an unused position_ids buffer; any other key the tree lacks is an error.
    /// </summary>
    internal void Load(ITensorSource source, bool? mapWeights)
    {
        LoadWeights(source, "", mapWeights, key => key.StartsWith(MgmCheckpointKeys.ImageNewline, StringComparison.Ordinal) ||
            ClipVisionTransformer.IsForeignKey(key) || IsSkippedByRule(key, TiedHead));
        Mining?.RefoldWeights(); // the weights were written in place, where mining's folded products cannot see it
    }

    /// <summary>Image tokens each image becomes: (g² + global) views × (CLIP patches).</summary>
    public int TokensPerImage => Views.ViewsPerImage * VisionTower.Config.PatchesPerSide * VisionTower.Config.PatchesPerSide;

    /// <summary>Normalized HR pixels <c>[B, 3, S, S]</c> (any device and dtype) → image tokens <c>[B, V·N, H]</c>, ready to splice.</summary>
    public Tensor GetImageFeatures(Tensor hr)
    {
        using var features = Encode(hr, keepIntermediates: false);
        return features.Tokens.alias();
    }

    /// <summary>HR pixels → image tokens and, on request, the intermediates.</summary>
    internal ImageFeatures Encode(Tensor hr, bool keepIntermediates = false)
    {
        using var scope = NewDisposeScope();
        using var _ = inference_mode(!training);
        var (lrFeatures, fused, mined) = Unprojected(hr);
        var tokens = Projector.call(mined);                                                                          // [B, V·N, H]
        return new ImageFeatures
        {
            LrFeatures = keepIntermediates ? lrFeatures.MoveToOuterDisposeScope() : null,
            HrFused = keepIntermediates ? fused?.MoveToOuterDisposeScope() : null,
            Mined = keepIntermediates ? mined.MoveToOuterDisposeScope() : null,
            Tokens = tokens.MoveToOuterDisposeScope(),
        };
    }

    /// <summary>The image tokens before the projector (LR + mined, or the LR features alone), <c>[B, V·N, D]</c>.</summary>
    internal Tensor EncodeUnprojected(Tensor hr)
    {
        using var scope = NewDisposeScope();
        using var _ = inference_mode(!training);
        return Unprojected(hr).Mined.MoveToOuterDisposeScope();
    }

    /// <summary>
    /// <see cref="EncodeUnprojected"/> and, for a model with mining (one view per image, as a trained-from-scratch model
    /// has), mining's attention scores before the softmax, <c>[B, N, s²]</c>: token t over the s×s block of its HR region.
    /// </summary>
    /// <exception cref="NotSupportedException">The model cuts images into a grid of views.</exception>
    internal (Tensor Mined, Tensor? MiningScores) EncodeWithMiningScores(Tensor hr)
    {
        if (Views.ViewsPerImage != 1) throw new NotSupportedException($"Mining scores are given for one view per image; this model has {Views.ViewsPerImage}.");
        using var scope = NewDisposeScope();
        using var _ = inference_mode(!training);
        var (lrFeatures, fused) = Towers(hr);                                                                       // [B, N, D], [B, Da, S/4, S/4]
        if (fused is null || Mining is null) return (lrFeatures.MoveToOuterDisposeScope(), null);
        // One view per image: mining is LR + attended value (PatchInfoMining.Encode with grid 1, in its train-mode form), scores computed once.
        var (scores, standardised) = ReferenceMining.FactoredScores(Mining, lrFeatures, fused);                     // [B, N, s²], [B, N, s², Da]
        var mined = lrFeatures.Plus(ReferenceMining.AttendedValues(Mining, scores, standardised));                   // [B, N, D]
        return (mined.MoveToOuterDisposeScope(), scores.MoveToOuterDisposeScope());
    }

    /// <summary>The fused ConvNeXt map of crops normalized at their own size <c>[B, 3, h, w]</c> → <c>[B, Da, h/4, w/4]</c>.</summary>
    internal Tensor EncodeHrFused(Tensor crops)
    {
        var convNeXt = AuxVisionTower ?? throw new InvalidOperationException("The model has no HR tower.");
        return convNeXt.ForwardFused(crops.to(DType, Device));
    }

    (Tensor LrFeatures, Tensor? Fused, Tensor Mined) Unprojected(Tensor hr)
    {
        var (lrFeatures, fused) = Towers(hr);                                                                       // [B·V, N, D], [B, Da, S/4, S/4]
        var mined = fused is null || Mining is null
            ? lrFeatures                                                                                             // [B, N, D]
            : Mining.Encode(lrFeatures, fused, Views.Grid, Views.HasGlobalView);                                     // [B, V·N, D]
        return (lrFeatures, fused, mined);
    }

    /// <summary>The CLIP features of the LR views <c>[B·V, N, D]</c> and the fused ConvNeXt map <c>[B, Da, S/4, S/4]</c> (null without an HR tower).</summary>
    (Tensor LrFeatures, Tensor? Fused) Towers(Tensor hr)
    {
        // MGM derives the LR views from the normalized float HR tensor before casting to the model dtype.
        var hrFloat = hr.to(ScalarType.Float32, Device);
        var lr = ImageProcessor.LowResolutionViews(hrFloat, Views.LrSize, Views.Grid, Views.HasGlobalView);         // [B·V, 3, s, s]
        var lrFeatures = VisionTower.SelectFeatures(lr.to(DType), MgmConfig.VisionSelectLayer, MgmConfig.VisionSelectFeature); // [B·V, N, D]
        return (lrFeatures, AuxVisionTower?.ForwardFused(hrFloat.to(DType)));
    }

    /// <summary>
    /// Embeds each row's text ids and puts image tokens where <see cref="ImageSlotTokenizer.ImageTokenIndex"/> stands (one image
    /// per slot, in order across the rows), then left-pads the rows to one length → input embeddings <c>[B, L, H]</c> and
    /// the attention mask <c>[B, L]</c> (null when no row is padded). Embeddings are raw: Gemma's √H scaling happens in
    /// the forward, for image tokens too.
    /// </summary>
    /// <exception cref="ArgumentException">The slots and the images do not match in number.</exception>
    public (Tensor InputsEmbeds, Tensor? AttentionMask) EmbedInputs(IReadOnlyList<IReadOnlyList<int>> rows, Tensor? imageTokens)
    {
        using var scope = NewDisposeScope();
        var (embeds, mask) = LeftPad(SpliceRows(rows, imageTokens));
        return (embeds.MoveToOuterDisposeScope(), mask?.MoveToOuterDisposeScope());
    }

    /// <summary>Each row spliced (<see cref="Splice"/>), the images taken in order across the rows → <c>[L_b, H]</c> per row.</summary>
    /// <exception cref="ArgumentException">The slots and the images do not match in number.</exception>
    internal List<Tensor> SpliceRows(IReadOnlyList<IReadOnlyList<int>> rows, Tensor? imageTokens)
    {
        var embedded = new List<Tensor>(rows.Count);
        int image = 0;
        foreach (var row in rows)
        {
            int count = ImageSlotTokenizer.CountImages(row);
            if (count > 0 && (imageTokens is null || image + count > imageTokens.shape[0]))
                throw new ArgumentException($"The prompts have more image slots than images ({imageTokens?.shape[0] ?? 0}).", nameof(imageTokens));
            embedded.Add(Splice(row, count == 0 ? null : imageTokens!.narrow(0, image, count)));            // [L_b, H]
            image += count;
        }
        if (imageTokens is not null && image != imageTokens.shape[0])
            throw new ArgumentException($"The prompts have {image} image slots but {imageTokens.shape[0]} images were given.", nameof(imageTokens));
        return embedded;
    }

    /// <summary>One row: text ids embedded, image tokens in their slots → <c>[L, H]</c>.</summary>
    internal Tensor Splice(IReadOnlyList<int> ids, Tensor? imageTokens)
    {
        using var scope = NewDisposeScope();
        // The row's text in one lookup (and one check of the ids), cut into the runs between the image slots below.
        var textIds = ids.Where(id => id != ImageSlotTokenizer.ImageTokenIndex).Select(id => (long)id).ToArray();
        var text = textIds.Length == 0 ? null : Embed(tensor(textIds, device: Device).unsqueeze(0)).squeeze(0);   // [text tokens, H]
        var parts = new List<Tensor>();
        int image = 0, start = 0, embedded = 0;
        for (int i = 0; i <= ids.Count; i++)
        {
            if (i < ids.Count && ids[i] != ImageSlotTokenizer.ImageTokenIndex) continue;
            if (i > start)
            {
                parts.Add(text!.narrow(0, embedded, i - start));                                                     // [n, H]
                embedded += i - start;
            }
            if (i < ids.Count)
            {
                if (imageTokens is null || image >= imageTokens.shape[0])
                    throw new ArgumentException($"The prompt has more image slots than images ({imageTokens?.shape[0] ?? 0}).", nameof(imageTokens));
                parts.Add(imageTokens[image++]);                                                                     // [T, H]
            }
            start = i + 1;
        }
        if (imageTokens is not null && image != imageTokens.shape[0])
            throw new ArgumentException($"The prompt has {image} image slots but {imageTokens.shape[0]} images were given.", nameof(imageTokens));
        return cat(parts, 0).MoveToOuterDisposeScope();                                                             // [L, H]
    }

    /// <summary>Rows <c>[L_i, H]</c> → <c>[B, max L, H]</c> padded on the left, and the mask (null when no row is padded).</summary>
    internal static (Tensor Embeds, Tensor? Mask) LeftPad(IReadOnlyList<Tensor> rows)
    {
        long length = rows.Max(r => r.shape[0]);
        if (rows.All(r => r.shape[0] == length)) return (stack(rows), null);
        var first = rows[0];
        var embeds = zeros([rows.Count, length, first.shape[1]], first.dtype, first.device);                        // [B, L, H]
        var mask = zeros([rows.Count, length], ScalarType.Int64, first.device);                                      // [B, L]
        for (int b = 0; b < rows.Count; b++)
        {
            long n = rows[b].shape[0];
            embeds[b].narrow(0, length - n, n).copy_(rows[b]);
            mask[b].narrow(0, length - n, n).fill_(Scalars.One);
        }
        return (embeds, mask);
    }
}
