using System.Runtime.InteropServices;
using MiniGemini.Checkpoints;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace MiniGemini.Modeling;

/// <summary>
/// A decoder-only language model of any supported family (Llama/Vicuna, Yi, Llama-3, Gemma, Mixtral), HF's
/// <c>XxxForCausalLM</c>: the decoder stack (<c>model.</c>) and the output head (<c>lm_head</c>). It runs on input
/// embeddings, so spliced image features enter the same way as text. A tied head has no weight of its own: it projects
/// with <c>model.embed_tokens.weight</c>, so no move or conversion can untie it.
/// </summary>
/// <remarks>Load one with <see cref="FromPretrained"/>, or build one of any size with <see cref="CreateRandom"/>.</remarks>
public partial class CausalLanguageModel : nn.Module
{
    internal readonly DecoderStack model;
    readonly Linear? lm_head;
    readonly object _stepLock = new();
    CompiledDecodeStep? _compiledStep;
    Exception? _compiledStepFailure;

    /// <summary>Builds the model for <paramref name="config"/>, uninitialised, on <paramref name="device"/> in <paramref name="dtype"/>.</summary>
    public CausalLanguageModel(LlmConfig config, LlmOptions? options = null, Device? device = null, ScalarType dtype = ScalarType.Float32,
        IReadOnlyList<int>? eosTokenIds = null)
        : this(config, options, device ?? CPU, dtype, eosTokenIds, arch => new DecoderStack(arch, device ?? CPU, dtype))
    {
    }

    /// <summary>Builds the model around another decoder stack (a Mini-Gemini model's <c>model.</c> also holds its vision parts).</summary>
    private protected CausalLanguageModel(LlmConfig config, LlmOptions? options, Device device, ScalarType dtype, IReadOnlyList<int>? eosTokenIds,
        Func<LlmArchitecture, DecoderStack> decoder)
        : base(nameof(CausalLanguageModel))
    {
        Config = config;
        Architecture = LlmArchitecture.For(config, options);
        model = decoder(Architecture);
        if (!TiedHead) lm_head = Layers.Linear(config.HiddenSize, config.VocabSize, bias: false, device, dtype);
        EosTokenIds = eosTokenIds is { Count: > 0 } ? eosTokenIds : config.EosTokenIds;
        Device = device;
        DType = dtype;
        register_module("model", model);
        if (lm_head is not null) register_module("lm_head", lm_head);
        eval();
    }

    /// <summary>Lets fused q/k/v and gate/up layers whose parts were mapped from the checkpoint run part by part.</summary>
    internal void SeparateIfLoadedApart()
    {
        foreach (var module in modules())
            (module switch { SelfAttention attention => attention.Qkv, GatedMlp mlp => mlp.GateUp, _ => null })?.SeparateIfLoadedApart();
    }

    /// <summary>The model's configuration (config.json).</summary>
    public LlmConfig Config { get; }

    /// <summary>Stop ids: generation_config.json's when the model folder has one, else config.json's.</summary>
    public IReadOnlyList<int> EosTokenIds { get; }

    /// <summary>Where the weights are.</summary>
    public Device Device { get; private set; }

    /// <summary>The weights' dtype, which is also the activations'.</summary>
    public ScalarType DType { get; private set; }
    internal LlmArchitecture Architecture { get; }

    /// <summary>Gemma always ties; the other families tie when the config says so (e.g. small Llama-3.2 models).</summary>
    internal bool TiedHead => Config.Family == LlmFamily.Gemma || Config.TieWordEmbeddings;

    /// <summary>
    /// ids [B, T] (any integer dtype) → raw embeddings [B, T, H] in the model dtype. Raw means unscaled: Gemma's
    /// √hidden factor is applied by <see cref="Forward"/> to all inputs, spliced image tokens included.
    /// </summary>
    /// <param name="ids">Token ids.</param>
    /// <param name="validate">Check ids against the vocabulary first (one host read). Skip only for ids the model produced.</param>
    /// <exception cref="ArgumentOutOfRangeException">An id outside [0, vocab).</exception>
    public Tensor Embed(Tensor ids, bool validate = true)
    {
        if (validate) ValidateIds(ids);
        using var _ = inference_mode(!training);
        using var scope = NewDisposeScope();
        if (!TensorHelpers.SameDevice(ids.device, Device)) ids = ids.to(Device);
        return model.embed_tokens.call(ids).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// One forward. <paramref name="inputsEmbeds"/> [B, T, H] at <paramref name="positionIds"/> [B, T];
    /// <paramref name="attentionMask"/> [B, past + T] (1 = attend, 0 = padding) or null; with a cache, the T new
    /// keys/values are appended after its filled positions. Returns float32 logits of the last position [B, V],
    /// or of every position [B, T, V] when <paramref name="allLogits"/>.
    /// </summary>
    public Tensor Forward(Tensor inputsEmbeds, Tensor positionIds, Tensor? attentionMask = null, KvCache? cache = null, bool allLogits = false)
    {
        ValidateForward(inputsEmbeds, positionIds, attentionMask, cache);
        using var _ = inference_mode(!training);
        using var scope = NewDisposeScope();
        var hidden = model.call(inputsEmbeds, positionIds, attentionMask, cache);      // [B, T, H]
        if (!allLogits) hidden = hidden.select(1, -1);                                 // [B, H]
        // Half-precision logits are widened for sampling and the loss; float64 (gradient checks) stays float64.
        var logits = RowLinear.Linear(hidden, HeadWeight, widened: true);
        return logits.MoveToOuterDisposeScope();                                       // [B, V] or [B, T, V]
    }

    /// <summary>
    /// One decode step for generation: ids [B, 1] (produced by the model, not validated) at positions [B, 1], key mask
    /// [B, cached + 1] or null, the cache (advanced by one) → float32 logits [B, V]. Runs the compiled step where
    /// <see cref="LlmOptions.CompileDecodeStep"/> lets it, else <see cref="Embed"/> and <see cref="Forward"/>.
    /// </summary>
    /// <remarks>
    /// A libtorch error from compiling or running the step (a fuser that cannot generate code for this device, say)
    /// switches the model to the eager step for good (<see cref="CompiledStepFailure"/>), and this step is run again
    /// eagerly: the cache has not advanced, and the eager step overwrites whatever the failed one wrote at the new position.
    /// </remarks>
    internal Tensor DecodeStep(Tensor ids, Tensor positions, Tensor? keyMask, KvCache cache)
    {
        if (!training)
            try
            {
                if (CompiledStep() is { } step)
                {
                    using var _ = inference_mode();
                    return step.Run(this, ids, positions, keyMask, cache);
                }
            }
            catch (ExternalException e)
            {
                _compiledStepFailure = e;
            }
        return Forward(Embed(ids, validate: false), positions, keyMask, cache);
    }

    /// <summary>The libtorch error that switched the model to the eager step, or null.</summary>
    internal Exception? CompiledStepFailure => _compiledStepFailure;

    /// <summary>
    /// The compiled step for the model as it is now (written again after a move to another dtype or device), or null
    /// where the eager step runs: switched off, not the default here, not supported, or failed.
    /// </summary>
    internal CompiledDecodeStep? CompiledStep()
    {
        bool? wanted = Architecture.Options.CompileDecodeStep;
        if (wanted == false || !CompiledDecodeStep.Supports(this) || _compiledStepFailure is not null
            || (wanted is null && !CompiledDecodeStep.IsDefaultFor(this))) return null;
        lock (_stepLock)
        {
            var layout = CompiledDecodeStep.LayoutOf(this);
            if (_compiledStep?.Compiled != layout)
            {
                _compiledStep?.Dispose();
                _compiledStep = CompiledDecodeStep.Compile(this);
            }
            return _compiledStep;
        }
    }

    /// <summary>Puts <paramref name="step"/> in the place of the compiled step for the current layout (tests).</summary>
    internal void UseCompiledStep(CompiledDecodeStep step)
    {
        lock (_stepLock)
        {
            _compiledStep?.Dispose();
            _compiledStep = step;
        }
    }

    /// <summary>The head's weight: <c>lm_head.weight</c>, or the embeddings when tied.</summary>
    internal Tensor HeadWeight => lm_head is null ? model.embed_tokens.weight : lm_head.weight!;

    /// <summary>A cache for <paramref name="batch"/> rows of up to <paramref name="maxLength"/> positions, on the model's device and dtype.</summary>
    public KvCache CreateCache(int batch, int maxLength) =>
        new(model.LayerCount, batch, Config.NumKeyValueHeads, maxLength, Config.HeadDim, DType, Device);

    /// <summary>Moves and converts the weights; tied weights stay tied (the head reads the embedding table itself).</summary>
    public void To(Device device, ScalarType dtype)
    {
        this.to(device, dtype);
        (Device, DType) = (device, dtype);
    }

    /// <summary>Frees the weights and the compiled decode step.</summary>
    /// <param name="disposing">True from <see cref="IDisposable.Dispose"/>.</param>
    protected override void Dispose(bool disposing)
    {
        if (disposing) _compiledStep?.Dispose();
        base.Dispose(disposing);
    }

    void ValidateIds(Tensor ids)
    {
        if (is_floating_point(ids) || ids.dtype == ScalarType.Bool)
            throw new ArgumentException($"Token ids must be integers, got {ids.dtype}.", nameof(ids));
        if (ids.numel() == 0) return;
        using var scope = NewDisposeScope();
        long min = ids.min().item<long>(), max = ids.max().item<long>();
        if (min < 0 || max >= Config.VocabSize)
            throw new ArgumentOutOfRangeException(nameof(ids),
                $"Token id {(min < 0 ? min : max)} is outside the vocabulary [0, {Config.VocabSize}) (image placeholders such as -200 must be spliced out first).");
    }

    void ValidateForward(Tensor embeds, Tensor positions, Tensor? mask, KvCache? cache)
    {
        var shape = embeds.shape;
        if (shape.Length != 3 || shape[2] != Config.HiddenSize)
            throw new ArgumentException($"inputsEmbeds must be [B, T, {Config.HiddenSize}], got {TensorHelpers.Shape(shape)}.", nameof(embeds));
        if (embeds.dtype != DType || !TensorHelpers.SameDevice(embeds.device, Device))
            throw new ArgumentException($"inputsEmbeds is {embeds.dtype} on {embeds.device}; the model is {DType} on {Device}.", nameof(embeds));
        long b = shape[0], t = shape[1], past = cache?.Length ?? 0;
        if (t == 0) throw new ArgumentException("inputsEmbeds has no positions.", nameof(embeds));
        if (!positions.shape.SequenceEqual(new[] { b, t }))
            throw new ArgumentException($"positionIds must be [{b}, {t}], got {TensorHelpers.Shape(positions.shape)}.", nameof(positions));
        if (mask is not null && !mask.shape.SequenceEqual(new[] { b, past + t }))
            throw new ArgumentException($"attentionMask must be [{b}, {past + t}] (cached + new positions), got {TensorHelpers.Shape(mask.shape)}.", nameof(mask));
        if (cache is not null && cache.Batch != b)
            throw new ArgumentException($"The cache holds {cache.Batch} rows but inputsEmbeds has {b}.", nameof(cache));
    }
}
