using MiniGemini.Checkpoints;
using TorchSharp;
using TorchSharp.Modules;
using TorchSharp.Utils;
using static TorchSharp.torch;

namespace MiniGemini.Modeling;

/// <summary>
/// The CLIP ViT that encodes MGM's low-resolution views: HF <c>CLIPVisionTransformer</c> (the <c>vision_model</c> of
/// <c>CLIPVisionModel</c>) with the same submodule names, so its state-dict keys are the checkpoint keys below
/// <c>vision_model.</c>. MGM uses <see cref="SelectFeatures"/>; <see cref="Forward"/> gives HF's full output.
/// </summary>
/// <remarks>In eval mode (the default) forwards run under <c>inference_mode</c>: outputs are inference tensors (no autograd,
/// no in-place updates outside it). In train mode they record the autograd graph.</remarks>
public sealed partial class ClipVisionTransformer : nn.Module<Tensor, ClipVisionOutput>
{
    [ComponentName(Name = "embeddings")] readonly ClipVisionEmbeddings _embeddings;
    [ComponentName(Name = "pre_layrnorm")] readonly LayerNorm _preLayrnorm; // sic: the checkpoint's spelling
    [ComponentName(Name = "encoder")] readonly ClipEncoder _encoder;
    [ComponentName(Name = "post_layernorm")] readonly LayerNorm _postLayernorm;

    /// <summary>Builds a randomly initialised tower; <see cref="FromPretrained"/> builds and loads one from its files.</summary>
    public ClipVisionTransformer(ClipVisionConfig config) : base(nameof(ClipVisionTransformer))
    {
        Config = config;
        _embeddings = new ClipVisionEmbeddings(config);
        _preLayrnorm = nn.LayerNorm(config.HiddenSize, config.LayerNormEps);
        _encoder = new ClipEncoder(config);
        _postLayernorm = nn.LayerNorm(config.HiddenSize, config.LayerNormEps);
        RegisterComponents();
        eval(); // inference by default; a trainer switches to train mode
    }

    /// <summary>The tower's configuration.</summary>
    public ClipVisionConfig Config { get; }

    /// <summary>The encoder layers, in order (exposed for hooks and tests).</summary>
    internal ModuleList<ClipEncoderLayer> Layers => _encoder.Layers;

    /// <summary>HF <c>CLIPVisionModel(pixel_values)</c> without hidden states.</summary>
    public override ClipVisionOutput forward(Tensor pixels) => Forward(pixels, outputHiddenStates: false);

    /// <summary>HF <c>CLIPVisionModel(pixel_values, output_hidden_states)</c>: runs every layer.</summary>
    /// <param name="pixels">Normalised pixels <c>[B, C, S, S]</c> with S = image_size.</param>
    /// <param name="outputHiddenStates">Also return the L + 1 hidden states.</param>
    public ClipVisionOutput Forward(Tensor pixels, bool outputHiddenStates)
    {
        using var scope = NewDisposeScope();
        using var _ = inference_mode(!training);
        var hidden = outputHiddenStates ? new List<Tensor>() : null;
        var x = Run(pixels, Config.NumHiddenLayers, hidden); // [B, 1 + P, D]
        var pooled = _postLayernorm.call(x.select(1, 0));     // [B, D], the CLS token only
        // x is hidden[^1] when hidden states are kept: move each tensor out exactly once.
        foreach (var t in hidden ?? [x]) t.MoveToOuterDisposeScope();
        return new ClipVisionOutput(x, pooled.MoveToOuterDisposeScope(), hidden ?? []);
    }

    /// <summary>
    /// MGM's <c>feature_select</c>: <c>hidden_states[selectLayer]</c>, without the CLS token for <c>"patch"</c>.
    /// Only the layers that feed the selected hidden state run: for MGM's −2 the last encoder layer is skipped
    /// (23 of ViT-L's 24 layers), and <c>post_layernorm</c> never runs.
    /// </summary>
    /// <param name="pixels">Normalised pixels <c>[B, C, S, S]</c> with S = image_size.</param>
    /// <param name="selectLayer">Index into the L + 1 hidden states (0 = embeddings); negative counts from the end.</param>
    /// <param name="feature"><c>"patch"</c> → <c>[B, P, D]</c>; <c>"cls_patch"</c> → <c>[B, 1 + P, D]</c>.</param>
    public Tensor SelectFeatures(Tensor pixels, int selectLayer = -2, string feature = "patch")
    {
        int hiddenIndex = selectLayer < 0 ? Config.NumHiddenLayers + 1 + selectLayer : selectLayer;
        if (hiddenIndex < 0 || hiddenIndex > Config.NumHiddenLayers)
            throw new ArgumentOutOfRangeException(nameof(selectLayer), selectLayer, $"There are {Config.NumHiddenLayers + 1} hidden states (embeddings + {Config.NumHiddenLayers} layers).");
        if (feature is not ("patch" or "cls_patch"))
            throw new ArgumentException($"Unknown select feature '{feature}' (patch or cls_patch).", nameof(feature));

        using var scope = NewDisposeScope();
        using var _ = inference_mode(!training);
        var x = Run(pixels, hiddenIndex, hidden: null); // [B, 1 + P, D]
        if (feature == "patch") x = x.narrow(1, 1, x.shape[1] - 1); // [B, P, D]
        return x.MoveToOuterDisposeScope();
    }

    /// <summary>Embeddings, <c>pre_layrnorm</c>, then the first <paramref name="layers"/> layers.</summary>
    Tensor Run(Tensor pixels, int layers, List<Tensor>? hidden)
    {
        CheckPixels(pixels);
        var x = _preLayrnorm.call(_embeddings.call(pixels)); // [B, 1 + P, D] = hidden_states[0]
        hidden?.Add(x);
        foreach (var layer in Layers.Take(layers))
        {
            var next = layer.call(x);
            if (hidden is null) x.Dispose(); // no one needs it; frees memory early instead of at scope end
            else hidden.Add(next);
            x = next;
        }
        return x;
    }

    void CheckPixels(Tensor pixels)
    {
        var shape = pixels.shape;
        if (shape.Length != 4 || shape[1] != Config.NumChannels || shape[2] != Config.ImageSize || shape[3] != Config.ImageSize)
            throw new ArgumentException(
                $"CLIP vision tower expects pixels [B, {Config.NumChannels}, {Config.ImageSize}, {Config.ImageSize}] but got {TensorHelpers.Shape(shape)}.",
                nameof(pixels));
    }
}
