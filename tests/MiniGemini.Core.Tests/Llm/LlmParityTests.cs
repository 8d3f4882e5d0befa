using MiniGemini.Generation;
using MiniGemini.Modeling;
using MiniGemini.Tests.Parity;
using TorchSharp;
using Xunit;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace MiniGemini.Tests.Llm;

/// <summary>Every LLM fixture folder (bundled llm-* and extra ones) against transformers' eager fp32 outputs.</summary>
public sealed class LlmParityTests(ITestOutputHelper output)
{
    public static TheoryData<string> Cases => FixtureCatalog.Cases(FixtureKind.Llm);

    [Theory]
    [MemberData(nameof(Cases))]
    public void Logits_match_the_reference(string id) => AssertLogitsWithEachAttention(id, maskKey: null, "logits");

    /// <summary>
    /// Row 1 is right-padded after 8 tokens. transformers (no position_ids given) keeps positions 0..11 and masks padded
    /// keys, so padded query positions still see the 8 real tokens: every position, padded ones included, is compared.
    /// </summary>
    [Theory]
    [MemberData(nameof(Cases))]
    public void Masked_logits_match_the_reference_at_every_position(string id) =>
        AssertLogitsWithEachAttention(id, "attention_mask", "logits_masked");

    /// <summary>All logits of the fixture's input_ids (with the mask stored under <paramref name="maskKey"/>, if any)
    /// against <paramref name="expectedKey"/>, with SDPA and with eager attention.</summary>
    void AssertLogitsWithEachAttention(string id, string? maskKey, string expectedKey)
    {
        var folder = FixtureCatalog.Resolve(id);
        using var io = FixtureIo.Open(folder);
        foreach (var kind in new[] { AttentionKind.Sdpa, AttentionKind.Eager })
        {
            using var llm = CausalLanguageModel.FromPretrained(folder, options: new LlmOptions { Attention = kind });
            using var scope = NewDisposeScope();
            var ids = io["input_ids"];
            var mask = maskKey is null ? null : io[maskKey];
            var logits = llm.Forward(llm.Embed(ids), Positions(ids.shape[0], ids.shape[1]), mask, allLogits: true);
            var error = TensorAssert.Close(io[expectedKey], logits, $"{id} {expectedKey} ({kind})");
            output.WriteLine($"{id} {expectedKey} ({kind}): max |Δ| = {error:E2}");
        }
    }

    /// <summary>
    /// Weights mapped from the checkpoint (views of the file; q/k/v and gate/up run part by part) give the reference
    /// logits too, and a mapped model moved to bfloat16 (parts joined again) equals a copied one moved the same way.
    /// </summary>
    [Theory]
    [MemberData(nameof(Cases))]
    public void Mapped_weights_give_the_reference_logits(string id)
    {
        var folder = FixtureCatalog.Resolve(id);
        using var io = FixtureIo.Open(folder);
        using (var source = MiniGemini.Checkpoints.Checkpoint.Open(folder))
            Assert.True(source.TryGetInfo("model.norm.weight", out var info) && info.DType == ScalarType.Float32, $"{id} stores float32, so a float32 model maps it");
        using var mapped = CausalLanguageModel.FromPretrained(folder, options: new LlmOptions { MapWeights = true });
        using var copied = CausalLanguageModel.FromPretrained(folder, options: new LlmOptions { MapWeights = false });
        using var scope = NewDisposeScope();
        var ids = io["input_ids"];
        var positions = Positions(ids.shape[0], ids.shape[1]);
        TensorAssert.Close(io["logits_masked"], mapped.Forward(mapped.Embed(ids), positions, io["attention_mask"], allLogits: true), $"{id} mapped");
        mapped.To(CPU, ScalarType.BFloat16);
        copied.To(CPU, ScalarType.BFloat16);
        var a = mapped.Forward(mapped.Embed(ids), positions, allLogits: true);
        var b = copied.Forward(copied.Embed(ids), positions, allLogits: true);
        Assert.True(a.Equals(b), $"{id}: the mapped model moved to bfloat16 differs from the copied one");
    }

    /// <summary>12 tokens, greedy, with the KV cache, starting from the prompt's input embeddings (EOS not applied, as in the fixture).</summary>
    [Theory]
    [MemberData(nameof(Cases))]
    public void Greedy_tokens_match_the_reference(string id)
    {
        var folder = FixtureCatalog.Resolve(id);
        using var io = FixtureIo.Open(folder);
        using var llm = CausalLanguageModel.FromPretrained(folder);
        using var scope = NewDisposeScope();
        var expected = io["greedy_tokens"];
        var embeds = llm.Embed(io["input_ids"]);
        var tokens = GenerateGreedy(llm, embeds, (int)expected.shape[1]);
        TensorAssert.Equal(expected, tokens, $"{id} greedy_tokens");
    }

    public static TheoryData<string> MgmCases => FixtureCatalog.Cases(FixtureKind.Mgm);

    /// <summary>
    /// The LLM inside each Mini-Gemini fixture checkpoint (vision keys beside it, skipped by rule), fed the spliced
    /// input embeddings (image features included; Gemma scales them inside the forward): all logits and the greedy tokens.
    /// </summary>
    [Theory]
    [MemberData(nameof(MgmCases))]
    public void Spliced_embeddings_of_a_Mini_Gemini_checkpoint_match_the_reference(string id)
    {
        var folder = FixtureCatalog.Resolve(id);
        using var io = FixtureIo.Open(folder);
        using var llm = CausalLanguageModel.FromPretrained(Path.Combine(folder, "model"));
        using var scope = NewDisposeScope();
        var embeds = io["input_embeds"];
        var logits = llm.Forward(embeds, Positions(1, embeds.shape[1]), allLogits: true);
        var error = TensorAssert.Close(io["logits"], logits, $"{id} logits");
        output.WriteLine($"{id} ({llm.Config.Family}) logits: max |Δ| = {error:E2}");
        var expected = io["greedy_tokens"];
        TensorAssert.Equal(expected, GenerateGreedy(llm, embeds, (int)expected.shape[1]), $"{id} greedy_tokens");
    }

    internal static Tensor GenerateGreedy(CausalLanguageModel llm, Tensor embeds, int count, Tensor? mask = null)
    {
        var options = new GenerationOptions { MaxNewTokens = count, EosTokenIds = [] };
        var steps = TokenGenerator.Generate(llm, embeds, mask, options).ToList();
        var rows = Enumerable.Range(0, (int)embeds.shape[0]).Select(b => steps.Select(s => (long)s.TokenIds[b]));
        return tensor(rows.SelectMany(r => r).ToArray(), [embeds.shape[0], steps.Count]);
    }

    internal static Tensor Positions(long batch, long length) => arange(length).expand(batch, length);
}
