using MiniGemini.Checkpoints;
using TorchSharp;
using static TorchSharp.torch;

namespace MiniGemini.Modeling;

/// <summary>
/// What distinguishes a decoder family: its norm, its feed-forward, whether inputs are scaled and whether the head is
/// tied. Everything else (attention, rotary positions, the residual stack, the cache) is shared.
/// </summary>
internal abstract class LlmArchitecture(LlmConfig config, LlmOptions options)
{
    public LlmConfig Config { get; } = config;
    public LlmOptions Options { get; } = options;

    public static LlmArchitecture For(LlmConfig config, LlmOptions? options = null) => config.Family switch
    {
        LlmFamily.Llama => new LlamaArchitecture(config, options ?? new()),
        LlmFamily.Gemma => new GemmaArchitecture(config, options ?? new()),
        LlmFamily.Mixtral => new MixtralArchitecture(config, options ?? new()),
        _ => throw ModelLoadException.Config($"LLM family {config.Family} is not supported.", key: "model_type"),
    };

    /// <summary>A hidden-size norm (input, post-attention and final norms).</summary>
    public abstract nn.Module<Tensor, Tensor> Norm(Device device, ScalarType dtype);

    /// <summary>The value a norm weight holds when it does nothing (1 for <c>w·x</c>, 0 for Gemma's <c>(1+w)·x</c>).</summary>
    public virtual float NormIdentity => 1f;

    /// <summary>The layer's feed-forward; <see cref="IsSparse"/> says whether it is named <c>block_sparse_moe</c>.</summary>
    public abstract nn.Module<Tensor, Tensor> FeedForward(int layer, Device device, ScalarType dtype);

    public virtual bool IsSparse => false;

    /// <summary>Factor applied to every input embedding inside the forward (Gemma: √hidden), or null.</summary>
    public virtual double? EmbeddingScale => null;

    /// <summary>The MLP activation's config name (the override, else <c>hidden_act</c>).</summary>
    public string MlpActivationName => Options.HiddenActOverride ?? Config.HiddenAct;

    protected Func<Tensor, Tensor> MlpActivation => Activation.FromName(MlpActivationName);

    /// <summary>
    /// TorchScript <c>def norm(x: Tensor, w: Tensor) -&gt; Tensor</c> doing what <see cref="Norm"/>'s module does, op for op
    /// (for <see cref="CompiledDecodeStep"/>).
    /// </summary>
    public virtual string NormScript => $$"""
        def norm(x: Tensor, w: Tensor) -> Tensor:
            x32 = x.float()
            return (x32 * x32.pow(2).mean([-1], keepdim=True).add({{CompiledDecodeStep.Literal(Config.RmsNormEps)}}).rsqrt()).to(x.dtype) * w
        """;
}
