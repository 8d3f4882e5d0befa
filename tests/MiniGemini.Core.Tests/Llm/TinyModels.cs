using MiniGemini.Checkpoints;
using MiniGemini.Modeling;
using Xunit;
using static TorchSharp.torch;

namespace MiniGemini.Tests.Llm;

/// <summary>Small random decoders of each family, for behaviour tests that need no reference values.</summary>
internal static class TinyModels
{
    public static LlmConfig Config(LlmFamily family, int maxPositions = 128) => new()
    {
        Family = family,
        VocabSize = 64,
        HiddenSize = 32,
        IntermediateSize = 48,
        NumHiddenLayers = 2,
        NumAttentionHeads = 4,
        NumKeyValueHeads = family == LlmFamily.Gemma ? 1 : 2,
        HeadDim = family == LlmFamily.Gemma ? 16 : 8,
        RmsNormEps = 1e-6,
        MaxPositionEmbeddings = maxPositions,
        HiddenAct = family == LlmFamily.Gemma ? "gelu_pytorch_tanh" : "silu",
        TieWordEmbeddings = family == LlmFamily.Gemma,
        NumLocalExperts = family == LlmFamily.Mixtral ? 4 : 0,
        NumExpertsPerToken = family == LlmFamily.Mixtral ? 2 : 0,
        EosTokenIds = [2],
        PadTokenId = 0,
    };

    public static CausalLanguageModel Create(LlmFamily family, long seed = 7, int maxPositions = 128, ScalarType dtype = ScalarType.Float32,
        LlmOptions? options = null) =>
        CausalLanguageModel.CreateRandom(Config(family, maxPositions), seed, dtype: dtype, std: 0.15, normJitter: 0.2, options: options);

    public static TheoryData<LlmFamily> Families => new() { LlmFamily.Llama, LlmFamily.Gemma, LlmFamily.Mixtral };

    /// <summary>Every family with SDPA (false) and eager attention (true).</summary>
    public static TheoryData<LlmFamily, bool> FamiliesAndEagerAttention
    {
        get
        {
            var data = new TheoryData<LlmFamily, bool>();
            foreach (var family in new[] { LlmFamily.Llama, LlmFamily.Gemma, LlmFamily.Mixtral })
            {
                data.Add(family, false);
                data.Add(family, true);
            }
            return data;
        }
    }

    /// <summary>Random embeddings of <paramref name="length"/> tokens per row, as a prompt would give.</summary>
    public static Tensor Prompt(CausalLanguageModel llm, int batch, int length, long seed = 11)
    {
        using var generator = new Generator((ulong)seed);
        var ids = randint(3, llm.Config.VocabSize, [batch, length], generator: generator);
        return llm.Embed(ids);
    }
}
