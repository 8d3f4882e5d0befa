using MiniGemini.Checkpoints;
using TorchSharp;
using static TorchSharp.torch;

namespace MiniGemini.Modeling;

/// <summary>
/// Mini-Gemini's patch info mining (<c>mgm_arch.py</c> <c>unified_resampler</c> with the visual token extension of
/// <c>encode_images</c>): each LR token on a P×P grid attends, single-head with scale 1/√D, to the s×s HR features of
/// its own block (s = HR width / P); the attended value is added to the raw LR feature.
/// Keys: <c>vlm_uni_query_projector.{0,1}.*</c> (LayerNorm(D), Linear(D, D)), <c>vlm_uni_aux_projector.{0,1}.*</c> and
/// <c>vlm_uni_val_projector.{0,1}.*</c> (LayerNorm(Da), Linear(Da, D)); prefixed <c>model.</c> in MGM checkpoints.
/// </summary>
public sealed class PatchInfoMining : nn.Module<Tensor, Tensor, Tensor>
{
    readonly NormLinear vlm_uni_query_projector;
    readonly NormLinear vlm_uni_aux_projector;
    readonly NormLinear vlm_uni_val_projector;

    /// <summary>Creates the module with default-initialised weights (load them with <see cref="Load"/>).</summary>
    /// <param name="mmHiddenSize">D, the width of the LR (CLIP) features: <c>mm_hidden_size</c>, 1024 in MGM.</param>
    /// <param name="mmHiddenSizeAux">Da, the width of the HR (ConvNeXt) map: <c>mm_hidden_size_aux</c>, 2880 in MGM.</param>
    public PatchInfoMining(long mmHiddenSize, long mmHiddenSizeAux) : base(nameof(PatchInfoMining))
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(mmHiddenSize, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(mmHiddenSizeAux, 1);
        HiddenSize = mmHiddenSize;
        AuxHiddenSize = mmHiddenSizeAux;
        vlm_uni_query_projector = new NormLinear(mmHiddenSize, mmHiddenSize);
        vlm_uni_aux_projector = new NormLinear(mmHiddenSizeAux, mmHiddenSize);
        vlm_uni_val_projector = new NormLinear(mmHiddenSizeAux, mmHiddenSize);
        RegisterComponents();
        eval(); // inference by default; a trainer switches to train mode
    }

    /// <summary>Creates the module for an MGM config (<c>mm_hidden_size</c>, <c>mm_hidden_size_aux</c>).</summary>
    /// <exception cref="ModelLoadException">The config has no <c>mm_hidden_size_aux</c>.</exception>
    public static PatchInfoMining FromConfig(MgmConfig config) =>
        new(config.MmHiddenSize, config.MmHiddenSizeAux
            ?? throw ModelLoadException.Config("MGM config has no 'mm_hidden_size_aux'; patch info mining needs the HR map width.", key: "mm_hidden_size_aux"));

    /// <summary>D, the width of the LR features and of the output.</summary>
    public long HiddenSize { get; }

    /// <summary>Da, the channel count of the HR map.</summary>
    public long AuxHiddenSize { get; }

    /// <summary>Which formulation runs; <see cref="MiningImplementation.Fast"/> unless set.</summary>
    public MiningImplementation Implementation { get; set; } = MiningImplementation.Fast;

    internal RegionBackend Backend { get; set; } = RegionBackend.Auto;
    internal NormLinear Query => vlm_uni_query_projector;
    internal NormLinear Key => vlm_uni_aux_projector;
    internal NormLinear Value => vlm_uni_val_projector;

    FoldedWeights? _folded;

    /// <summary>
    /// The fast path's products of the weights, folded again whenever a parameter object was replaced (<c>to()</c>)
    /// or the weights were loaded (<see cref="Load"/>, <c>load_state_dict</c>, <c>load</c>).
    /// </summary>
    internal FoldedWeights Folded
    {
        get
        {
            if (_folded is null || !_folded.FoldedFrom(this))
            {
                _folded?.Dispose();
                _folded = FoldedWeights.Create(this);
            }
            return _folded;
        }
    }

    /// <summary>
    /// Drops what the fast path has folded from the weights, so that the next call folds them again. Loading and
    /// moving the module do this by themselves; call it after editing a parameter in place by other means.
    /// </summary>
    public void RefoldWeights()
    {
        _folded?.Dispose();
        _folded = null;
    }

    /// <summary>One view per LR entry: <see cref="Encode"/> with image_grid 1 and no global view.</summary>
    /// <param name="lrFeatures"><c>[N, P², D]</c>.</param>
    /// <param name="hrMap"><c>[N, Da, P·s, P·s]</c>.</param>
    /// <returns>LR + mined, <c>[N, P², D]</c>.</returns>
    public override Tensor forward(Tensor lrFeatures, Tensor hrMap) => Encode(lrFeatures, hrMap);

    /// <summary>
    /// Mining with MGM's visual token extension, for any batch. LR features arrive as <c>[B·g² crops ; B globals]</c>
    /// (globals only when <paramref name="imageGlobal"/>); crop k of an image mines against the k-th of the g×g
    /// row-major tiles of its HR map, the global view against the map bilinearly downsampled by 1/g.
    /// </summary>
    /// <param name="lrFeatures"><c>[B·(g² + global), P², D]</c>, e.g. CLIP patch features.</param>
    /// <param name="hrMap"><c>[B, Da, g·P·s, g·P·s]</c>, the fused ConvNeXt map (NCHW, as the fusion hands it over).</param>
    /// <param name="imageGrid">g, <c>image_grid</c> (1 normal, 2 HD).</param>
    /// <param name="imageGlobal">Whether a global view is present (<c>image_global</c>).</param>
    /// <returns>LR + mined, <c>[B, (global + g²)·P², D]</c>, per image in the order [global, crop00, crop01, …].</returns>
    /// <exception cref="ArgumentException">Shapes, view counts, dtypes or devices do not fit together.</exception>
    public Tensor Encode(Tensor lrFeatures, Tensor hrMap, int imageGrid = 1, bool imageGlobal = false)
    {
        using var _ = inference_mode(!training);
        var layout = TokenExtension.Describe(lrFeatures, hrMap, imageGrid, imageGlobal, HiddenSize, AuxHiddenSize);
        var weight = vlm_uni_aux_projector.linear.weight;
        if (lrFeatures.dtype != weight.dtype || !TensorHelpers.SameDevice(lrFeatures.device, weight.device))
            throw new ArgumentException($"{nameof(PatchInfoMining)}: inputs are {lrFeatures.dtype} on {lrFeatures.device} but the weights are {weight.dtype} on {weight.device}.", nameof(lrFeatures));
        // Training needs autograd: the fast path's folded weights and kernel have none, the factored formulation does.
        if (training) return ReferenceMining.Encode(this, lrFeatures, hrMap, layout, ReferenceMining.FactoredResampler);
        return Implementation == MiningImplementation.Reference
            ? ReferenceMining.Encode(this, lrFeatures, hrMap, layout, ReferenceMining.UnifiedResampler)
            : FastMining.Encode(this, lrFeatures, hrMap, layout, Backend);
    }

    /// <summary>
    /// Loads the weights from a checkpoint holding them at the root (<c>vlm_uni_query_projector.0.weight</c>, …) or
    /// under <c>model.</c> (MGM checkpoints); every other key is left to other modules.
    /// </summary>
    /// <exception cref="ModelLoadException">Neither layout is present, or a key is missing or has the wrong shape.</exception>
    internal LoadReport Load(ITensorSource source)
    {
        const string probe = "vlm_uni_query_projector.0.weight";
        var prefix = StateDictLoader.FindPrefix(source, probe, "", "model.")
            ?? throw new ModelLoadException($"{source.Location} has no patch info mining weights ('{probe}' or 'model.{probe}').", source.Location, probe);
        RefoldWeights();
        return StateDictLoader.Load(this, source, prefix, new LoadOptions { IsForeign = key => !key.StartsWith("vlm_uni_", StringComparison.Ordinal) });
    }

    /// <inheritdoc/>
    public override (IList<string> missing_keys, IList<string> unexpected_keyes) load_state_dict(Dictionary<string, Tensor> source, bool strict = true, IList<string>? skip = null)
    {
        RefoldWeights();
        return base.load_state_dict(source, strict, skip);
    }

    /// <inheritdoc/>
    public override nn.Module load(BinaryReader reader, bool strict = true, IList<string>? skip = null, Dictionary<string, bool>? loadedParameters = null)
    {
        RefoldWeights();
        return base.load(reader, strict, skip, loadedParameters);
    }

    /// <inheritdoc/>
    protected override void Dispose(bool disposing)
    {
        if (disposing) RefoldWeights();
        base.Dispose(disposing);
    }
}
