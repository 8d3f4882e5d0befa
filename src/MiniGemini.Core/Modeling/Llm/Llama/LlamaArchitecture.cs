using MiniGemini.Checkpoints;
using TorchSharp;
using static TorchSharp.torch;

namespace MiniGemini.Modeling;

/// <summary>
/// Llama (Vicuna, Llama-3, Yi, Mistral): RMSNorm with the cast before the weight, SwiGLU MLP, optional biases.
/// Attention (MHA or GQA) and rotary positions (with Llama-3 scaling when configured) are the shared ones.
/// </summary>
internal sealed class LlamaArchitecture(LlmConfig config, LlmOptions options) : LlmArchitecture(config, options)
{
    public override nn.Module<Tensor, Tensor> Norm(Device device, ScalarType dtype) =>
        new RmsNorm(Config.HiddenSize, Config.RmsNormEps, device, dtype);

    public override nn.Module<Tensor, Tensor> FeedForward(int layer, Device device, ScalarType dtype) =>
        new GatedMlp(Config.HiddenSize, Config.IntermediateSize, Config.MlpBias, MlpActivation, GatedMlp.MlpNames,
            device, dtype);
}
