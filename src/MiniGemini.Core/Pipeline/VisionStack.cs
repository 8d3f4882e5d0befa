using MiniGemini.Checkpoints;
using MiniGemini.Modeling;
using MiniGemini.Vision;
using TorchSharp;
using static TorchSharp.torch;

namespace MiniGemini.Pipeline;

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
/// The image side of Mini-Gemini: the LR views are derived from the normalized HR tensor (as MGM's CLI does), CLIP
/// encodes them, the ConvNeXt encodes the HR tensor and fuses its stages, patch info mining lets each LR token attend to
/// its own HR region, and the projector maps the result to the LLM's width. Without a ConvNeXt (an LR-only model, as
/// LLaVA) the CLIP features go straight to the projector.
/// </summary>
internal sealed class VisionStack : IDisposable
{
    public VisionStack(ViTEncoder clip, ConvNeXtEncoder? convNeXt, PatchInfoMining? mining, VisionProjector projector,
        MgmConfig config, ImagePreprocessOptions preprocess)
    {
        Clip = clip;
        ConvNeXt = convNeXt;
        Mining = mining;
        Projector = projector;
        Config = config;
        Preprocess = preprocess;
    }

    public ViTEncoder Clip { get; }
    public ConvNeXtEncoder? ConvNeXt { get; }
    public PatchInfoMining? Mining { get; }
    public VisionProjector Projector { get; }
    public MgmConfig Config { get; }
    public ImagePreprocessOptions Preprocess { get; }

    /// <summary>Image tokens each image becomes: (g² + global) views × (CLIP patches).</summary>
    public int TokensPerImage => Preprocess.ViewsPerImage * Clip.Config.PatchesPerSide * Clip.Config.PatchesPerSide;

    /// <summary>HR pixels <c>[B, 3, S, S]</c> (normalized, any device/dtype) → image tokens and, on request, intermediates.</summary>
    public ImageFeatures Encode(Tensor hr, Device device, ScalarType dtype, bool keepIntermediates = false)
    {
        using var scope = NewDisposeScope();
        using var _ = inference_mode(!Clip.training);
        var (lrFeatures, fused, mined) = Unprojected(hr, device, dtype);
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
    public Tensor EncodeUnprojected(Tensor hr, Device device, ScalarType dtype)
    {
        using var scope = NewDisposeScope();
        using var _ = inference_mode(!Clip.training);
        return Unprojected(hr, device, dtype).Mined.MoveToOuterDisposeScope();
    }

    /// <summary>
    /// <see cref="EncodeUnprojected"/> and, for a model with mining (one view per image, as a trained-from-scratch model
    /// has), mining's attention scores before the softmax, <c>[B, N, s²]</c>: token t over the s×s block of its HR region.
    /// </summary>
    /// <exception cref="NotSupportedException">The model cuts images into a grid of views.</exception>
    public (Tensor Mined, Tensor? MiningScores) EncodeWithMiningScores(Tensor hr, Device device, ScalarType dtype)
    {
        if (Preprocess.ViewsPerImage != 1) throw new NotSupportedException($"Mining scores are given for one view per image; this model has {Preprocess.ViewsPerImage}.");
        using var scope = NewDisposeScope();
        using var _ = inference_mode(!Clip.training);
        var (lrFeatures, fused) = Towers(hr, device, dtype);                                                        // [B, N, D], [B, Da, S/4, S/4]
        if (fused is null || Mining is null) return (lrFeatures.MoveToOuterDisposeScope(), null);
        // One view per image: mining is LR + attended value (ReferenceMining.Encode with grid 1), scores computed once.
        var (scores, standardised) = ReferenceMining.FactoredScores(Mining, lrFeatures, fused);                     // [B, N, s²], [B, N, s², Da]
        var mined = lrFeatures.Plus(ReferenceMining.AttendedValues(Mining, scores, standardised));                   // [B, N, D]
        return (mined.MoveToOuterDisposeScope(), scores.MoveToOuterDisposeScope());
    }

    (Tensor LrFeatures, Tensor? Fused, Tensor Mined) Unprojected(Tensor hr, Device device, ScalarType dtype)
    {
        var (lrFeatures, fused) = Towers(hr, device, dtype);                                                        // [B·V, N, D], [B, Da, S/4, S/4]
        var mined = fused is null || Mining is null
            ? lrFeatures                                                                                             // [B, N, D]
            : Mining.Encode(lrFeatures, fused, Preprocess.Grid, Preprocess.HasGlobalView);                           // [B, V·N, D]
        return (lrFeatures, fused, mined);
    }

    /// <summary>The CLIP features of the LR views <c>[B·V, N, D]</c> and the fused ConvNeXt map <c>[B, Da, S/4, S/4]</c> (null without an HR tower).</summary>
    (Tensor LrFeatures, Tensor? Fused) Towers(Tensor hr, Device device, ScalarType dtype)
    {
        // MGM derives the LR views from the normalized float HR tensor before casting to the model dtype.
        var hrFloat = hr.to(ScalarType.Float32, device);
        var lr = ImageProcessor.LowResolutionViews(hrFloat, Preprocess.LrSize, Preprocess.Grid, Preprocess.HasGlobalView); // [B·V, 3, s, s]
        var lrFeatures = Clip.SelectFeatures(lr.to(dtype), Config.VisionSelectLayer, Config.VisionSelectFeature);     // [B·V, N, D]
        return (lrFeatures, ConvNeXt?.ForwardFused(hrFloat.to(dtype)));
    }

    public void To(Device device, ScalarType dtype)
    {
        // One conversion per parameter: the weights never sit on the device in float32 first.
        foreach (var module in Modules) module.to(device, dtype);
    }

    /// <summary>The modules, with the prefix of their keys in an MGM checkpoint (the ConvNeXt's parts are renamed there).</summary>
    public IEnumerable<nn.Module> Modules => new nn.Module?[] { Clip, ConvNeXt, Mining, Projector }.OfType<nn.Module>();

    /// <summary>Train or eval mode for every module: in train mode <see cref="Encode"/> records the autograd graph.</summary>
    public void Train(bool training)
    {
        foreach (var module in Modules) module.train(training);
    }

    public void Dispose()
    {
        foreach (var module in Modules) module.Dispose();
    }
}
