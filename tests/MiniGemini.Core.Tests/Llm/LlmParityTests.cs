using MiniGemini.Llm;
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

    internal static AttentionKind[] Kinds => [AttentionKind.Sdpa, AttentionKind.Eager];

    [Theory]
    [MemberData(nameof(Cases))]
    public void Logits_match_the_reference(string id)
    {
        var folder = FixtureCatalog.Resolve(id);
        using var io = FixtureIo.Open(folder);
        foreach (var kind in Kinds)
        {
            using var llm = LlmAdapter.FromPretrained(folder, options: new LlmOptions { Attention = kind });
            using var scope = NewDisposeScope();
            var ids = io["input_ids"];
            var logits = llm.Forward(llm.Embed(ids), Positions(ids.shape[0], ids.shape[1]), allLogits: true);
            var error = TensorAssert.Close(io["logits"], logits, $"{id} logits ({kind})");
            output.WriteLine($"{id} logits ({kind}): max |Δ| = {error:E2}");
        }
    }

    /// <summary>
    /// Row 1 is right-padded after 8 tokens. transformers (no position_ids given) keeps positions 0..11 and masks padded
    /// keys, so padded query positions still see the 8 real tokens: every position, padded ones included, is compared.
    /// </summary>
    [Theory]
    [MemberData(nameof(Cases))]
    public void Masked_logits_match_the_reference_at_every_position(string id)
    {
        var folder = FixtureCatalog.Resolve(id);
        using var io = FixtureIo.Open(folder);
        foreach (var kind in Kinds)
        {
            using var llm = LlmAdapter.FromPretrained(folder, options: new LlmOptions { Attention = kind });
            using var scope = NewDisposeScope();
            var ids = io["input_ids"];
            var logits = llm.Forward(llm.Embed(ids), Positions(ids.shape[0], ids.shape[1]), io["attention_mask"], allLogits: true);
            var error = TensorAssert.Close(io["logits_masked"], logits, $"{id} logits_masked ({kind})");
            output.WriteLine($"{id} logits_masked ({kind}): max |Δ| = {error:E2}");
        }
    }

    internal static Tensor Positions(long batch, long length) => arange(length).expand(batch, length);
}
