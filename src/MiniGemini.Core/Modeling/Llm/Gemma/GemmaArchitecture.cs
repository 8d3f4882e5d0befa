using MiniGemini.Checkpoints;
using TorchSharp;
using static TorchSharp.torch;

namespace MiniGemini.Modeling;

/// <summary>
/// Gemma: (1+w) RMSNorm multiplied in float32, GeGLU with tanh GELU (config <c>hidden_activation</c>, overridable),
/// every input embedding — image tokens included — scaled by √hidden inside the forward, and an lm_head tied to
/// the embeddings. Multi-query attention and a head_dim independent of hidden/heads come from the config.
/// </summary>
internal sealed class GemmaArchitecture(LlmConfig config, LlmOptions options) : LlmArchitecture(config, options)
{
    public override nn.Module<Tensor, Tensor> Norm(Device device, ScalarType dtype) =>
        new GemmaRmsNorm(Config.HiddenSize, Config.RmsNormEps, device, dtype);

    public override float NormIdentity => 0f;

    public override nn.Module<Tensor, Tensor> FeedForward(int layer, Device device, ScalarType dtype) =>
        new GatedMlp(Config.HiddenSize, Config.IntermediateSize, bias: false, MlpActivation, GatedMlp.MlpNames,
            device, dtype);

    public override string NormScript => $$"""
        def norm(x: Tensor, w: Tensor) -> Tensor:
            x32 = x.float()
            return (x32 * x32.pow(2).mean([-1], keepdim=True).add({{CompiledDecodeStep.Literal(Config.RmsNormEps)}}).rsqrt() * w.float().add(1.0)).to(x.dtype)
        """;

    public override double? EmbeddingScale => Math.Sqrt(Config.HiddenSize);
}
