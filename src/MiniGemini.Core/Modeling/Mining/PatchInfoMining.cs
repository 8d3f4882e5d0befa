using MiniGemini.Checkpoints;
using TorchSharp;
using static TorchSharp.torch;
using static TorchSharp.torch.nn.functional;

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

    /// <summary>Creates the module with default-initialised weights (a model built by <see cref="MiniGeminiBuilder"/> loads them, or <c>load_state_dict</c>).</summary>
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

    /// <summary>Which formulation an eval-mode forward runs; tests and benchmarks set it to compare the two.</summary>
    internal MiningImplementation Implementation { get; set; } = MiningImplementation.Fast;

    /// <summary>
    /// The fast path (<see cref="FastMining"/>, in Accelerated/) computes the function written out below without
    /// projecting a single HR feature. Its folded weights and CPU kernel record no gradients, so train mode never
    /// takes it.
    /// </summary>
    bool UseAccelerated => !training && Implementation == MiningImplementation.Fast;

    /// <summary>
    /// Lets tests and benchmarks run the fast path's tensor operations, which a GPU runs, compiled or op by op, where
    /// the CPU kernel would run.
    /// </summary>
    internal RegionBackend Backend { get; set; } = RegionBackend.Auto;

    readonly object _compileLock = new();
    CompiledMining? _compiled;
    Exception? _compiledFailure;

    /// <summary>
    /// The compiled tensor operations for <paramref name="map"/>, or null where the CPU kernel or the tensor
    /// operations op by op run: not the default there (<see cref="Backend"/>), or switched off by a failure.
    /// </summary>
    internal CompiledMining? CompiledFor(Tensor map)
    {
        bool wanted = Backend == RegionBackend.CompiledTensorOps || (Backend == RegionBackend.Auto && CompiledMining.IsDefaultFor(map));
        if (!wanted || _compiledFailure is not null) return null;
        lock (_compileLock) return _compiled ??= CompiledMining.Compile();
    }

    /// <summary>
    /// Switches the module to the tensor operations op by op for good after a libtorch error from the compiled
    /// function (a fuser that cannot generate code for this device, say).
    /// </summary>
    internal void CompiledMiningFailed(Exception error) => _compiledFailure = error;

    /// <summary>The libtorch error that switched the module to the tensor operations op by op, or null.</summary>
    internal Exception? CompiledMiningFailure => _compiledFailure;

    /// <summary>Puts <paramref name="compiled"/> in the place of the compiled function (tests).</summary>
    internal void UseCompiledMining(CompiledMining compiled)
    {
        lock (_compileLock)
        {
            _compiled?.Dispose();
            _compiled = compiled;
        }
    }

    internal NormLinear Query => vlm_uni_query_projector;
    internal NormLinear Key => vlm_uni_aux_projector;
    internal NormLinear Value => vlm_uni_val_projector;

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
        var layout = ViewLayout.Describe(lrFeatures, hrMap, imageGrid, imageGlobal, HiddenSize, AuxHiddenSize);
        var weight = vlm_uni_aux_projector.linear.weight;
        if (lrFeatures.dtype != weight.dtype || !TensorHelpers.SameDevice(lrFeatures.device, weight.device))
            throw new ArgumentException($"{nameof(PatchInfoMining)}: inputs are {lrFeatures.dtype} on {lrFeatures.device} but the weights are {weight.dtype} on {weight.device}.", nameof(lrFeatures));
        if (UseAccelerated) return FastMining.Encode(this, lrFeatures, hrMap, layout);

        using var scope = NewDisposeScope();
        var crops = layout.Crops(lrFeatures);                                                    // [B·g², P², D]
        var hrCrops = imageGrid > 1 ? SplitCrops(hrMap, imageGrid) : hrMap;                      // [B·g², Da, P·s, P·s]
        var mined = crops.Plus(Resample(crops, hrCrops))                                         // [B·g², P², D]
            .reshape(layout.Batch, imageGrid * imageGrid * layout.TokensPerView, -1);            // [B, g²·P², D]
        if (imageGlobal)
        {
            var globals = layout.Globals(lrFeatures);                                            // [B, P², D]
            var hrGlobal = GlobalMap(hrMap, imageGrid);                                          // [B, Da, P·s, P·s]
            mined = cat([globals.Plus(Resample(globals, hrGlobal)), mined], dim: 1);             // [B, (1+g²)·P², D]
        }
        return mined.MoveToOuterDisposeScope();
    }

    /// <summary>
    /// MGM's <c>unified_resampler</c> in eval mode; in train mode the same function in a factored form
    /// (<see cref="ReferenceMining.FactoredResampler"/>), because autograd would otherwise keep a key and a value
    /// for every HR feature.
    /// </summary>
    Tensor Resample(Tensor images, Tensor imagesAux) =>
        training ? ReferenceMining.FactoredResampler(this, images, imagesAux) : UnifiedResampler(images, imagesAux);

    /// <summary>
    /// MGM's <c>unified_resampler</c> as written: every HR feature of a token's block is projected to a key and a
    /// value, then softmax(nan_to_num(q·kᵀ/√D))·v, averaged over the query's single row.
    /// </summary>
    /// <param name="images">LR features <c>[N, P², D]</c>.</param>
    /// <param name="imagesAux">HR maps <c>[N, Da, P·s, P·s]</c>.</param>
    /// <returns>The attended HR information per LR token, <c>[N, P², D]</c> (MGM returns it beside the unchanged LR features).</returns>
    Tensor UnifiedResampler(Tensor images, Tensor imagesAux)
    {
        using var scope = NewDisposeScope();
        var aux = Regions(images, imagesAux).contiguous();                                       // [N, P², s², Da]
        var query = vlm_uni_query_projector.call(images);                                        // [N, P², D]
        var key = vlm_uni_aux_projector.call(aux);                                               // [N, P², s², D]
        var value = vlm_uni_val_projector.call(aux);                                             // [N, P², s², D]
        using var scale = Math.Sqrt(key.shape[^1]).ToScalar();
        var attention = query.unsqueeze(2).matmul(key.transpose(-1, -2).div(scale));            // [N, P², 1, s²]
        attention = attention.nan_to_num();
        return attention.softmax(-1).matmul(value).mean([2]).MoveToOuterDisposeScope();          // [N, P², D]
    }

    /// <summary>The HR map <c>[N, Da, P·s, P·s]</c> as the s×s block of each of the P² LR tokens, <c>[N, P², s², Da]</c>.</summary>
    internal static Tensor Regions(Tensor images, Tensor imagesAux)
    {
        long n = imagesAux.shape[0], channels = imagesAux.shape[1];
        long patchNum = (long)Math.Round(Math.Sqrt(images.shape[1]));
        long patchSize = imagesAux.shape[^1] / patchNum;
        return imagesAux.permute(0, 2, 3, 1)                                                     // [N, H, W, Da]
            .reshape(n, patchNum, patchSize, patchNum, patchSize, channels)                     // [N, P, s, P, s, Da]
            .permute(0, 1, 3, 2, 4, 5)                                                           // [N, P, P, s, s, Da]
            .reshape(n, patchNum * patchNum, patchSize * patchSize, channels);                   // [N, P², s², Da]
    }

    /// <summary>MGM's split of the HR map into g×g row-major crops, <c>[B·g², Da, H/g, W/g]</c> (a copy).</summary>
    static Tensor SplitCrops(Tensor hrMap, int grid)
    {
        long b = hrMap.shape[0], c = hrMap.shape[1], h = hrMap.shape[2] / grid, w = hrMap.shape[3] / grid;
        return hrMap.reshape(b, c, grid, h, grid, w)                                             // [B, Da, gi, h, gj, w]
            .permute(0, 2, 4, 1, 3, 5)                                                           // [B, gi, gj, Da, h, w]
            .reshape(b * grid * grid, c, h, w)                                                   // [B·g², Da, h, w]
            .contiguous();
    }

    /// <summary>
    /// The global view's HR map: the whole map bilinearly downsampled by 1/g (<c>F.interpolate(scale_factor=1/g,
    /// align_corners=False)</c>) in float32, as MGM does, then back in the map's dtype.
    /// </summary>
    internal static Tensor GlobalMap(Tensor hrMap, int grid)
    {
        using var scope = NewDisposeScope();
        var scale = 1.0 / grid;
        var resized = interpolate(hrMap.to(ScalarType.Float32), scale_factor: [scale, scale], mode: InterpolationMode.Bilinear, align_corners: false);
        return resized.to(hrMap.dtype).MoveToOuterDisposeScope();                                // [B, Da, H/g, W/g]
    }

    FoldedWeights? _folded;

    /// <summary>
    /// The fast path's products of the weights, folded again whenever a parameter object was replaced
    /// (<c>to()</c>) or the weights were loaded (<c>load_state_dict</c>, <c>load</c>; a model refolds after its load).
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

    /// <summary>
    /// Loads the weights stored under <paramref name="prefix"/> of a file of weights (<c>vlm_uni_query_projector.0.weight</c>,
    /// …); every other key is left to other modules.
    /// </summary>
    /// <exception cref="ModelLoadException">A key is missing or has the wrong shape.</exception>
    internal LoadReport Load(ITensorSource source, string prefix = "")
    {
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
        if (disposing)
        {
            RefoldWeights();
            _compiled?.Dispose();
            _compiled = null;
        }
        base.Dispose(disposing);
    }
}
