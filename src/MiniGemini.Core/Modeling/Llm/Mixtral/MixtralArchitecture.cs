using MiniGemini.Checkpoints;
using TorchSharp;
using static TorchSharp.torch;

namespace MiniGemini.Modeling;

/// <summary>
/// Mixtral: Llama/Mistral attention (GQA) and norms with a sparse mixture of experts in place of the MLP, stored in
/// the released per-expert layout (<c>block_sparse_moe.gate</c>, <c>block_sparse_moe.experts.{e}.w1/w2/w3</c>).
/// </summary>
internal sealed class MixtralArchitecture : LlmArchitecture
{
    public MixtralArchitecture(LlmConfig config, LlmOptions options) : base(config, options)
    {
        if (config.SlidingWindow is { } window && window < config.MaxPositionEmbeddings)
            throw ModelLoadException.Config(
                $"sliding_window {window} is shorter than max_position_embeddings {config.MaxPositionEmbeddings}; " +
                "windowed attention is not implemented (Mini-Gemini's Mixtral checkpoints have none).", key: "sliding_window");
    }

    public override nn.Module<Tensor, Tensor> Norm(Device device, ScalarType dtype) =>
        new RmsNorm(Config.HiddenSize, Config.RmsNormEps, device, dtype);

    public override nn.Module<Tensor, Tensor> FeedForward(int layer, Device device, ScalarType dtype) =>
        new SparseMoeBlock(Config.HiddenSize, Config.IntermediateSize, Config.NumLocalExperts, Config.NumExpertsPerToken,
            MlpActivation, device, dtype);

    public override bool IsSparse => true;
}
