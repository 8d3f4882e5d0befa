using MiniGemini.Checkpoints;
using MiniGemini.Modeling;
using MiniGemini.Tests.Parity;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace MiniGemini.Tests.Llm;

public sealed class FusedLinearTests
{
    [Fact]
    public void The_joint_matmul_equals_each_part_alone_biases_included()
    {
        using var fused = Randomised(new FusedLinear(8, [6, 4, 4], bias: true, CPU, ScalarType.Float32));
        using var scope = NewDisposeScope();
        var x = randn(2, 3, 8);
        var separate = cat(fused.Parts.Select(p => p.call(x)).ToArray(), -1); // [2, 3, 14]
        TensorAssert.Close(separate, fused.Forward(x), "q/k/v-like parts");
    }

    [Fact]
    public void The_parts_are_views_of_the_joint_weight_before_and_after_a_move()
    {
        using var fused = Randomised(new FusedLinear(8, [5, 3], bias: true, CPU, ScalarType.Float32));
        using var scope = NewDisposeScope();
        AssertPartsAreViews(fused, ScalarType.Float32);

        // What Module.to does to each part: a converted copy of its own. Rejoin makes them views again.
        foreach (var part in fused.Parts) part.to(ScalarType.Float64);
        fused.Rejoin();
        AssertPartsAreViews(fused, ScalarType.Float64);
    }

    /// <summary>Weights loaded into a model after a move (through state_dict, as the loader does) reach the fused matmuls.</summary>
    [Fact]
    public void Weights_loaded_after_a_dtype_move_reach_the_fused_projections()
    {
        var folder = FixtureCatalog.Bundled("llm-llama-gqa");
        using var io = FixtureIo.Open(folder);
        var config = LlmConfig.Load(Path.Combine(folder, "config.json"));
        using var llm = CausalLanguageModel.CreateRandom(config, seed: 3);
        llm.To(CPU, ScalarType.Float64);
        using (var source = Checkpoint.Open(folder))
            StateDictLoader.Load((CausalLanguageModel)llm, source, "", new LoadOptions { IsForeign = k => CausalLanguageModel.IsForeign(k, false) });

        using var scope = NewDisposeScope();
        var ids = io["input_ids"];
        var logits = llm.Forward(llm.Embed(ids), LlmParityTests.Positions(ids.shape[0], ids.shape[1]), allLogits: true);
        TensorAssert.Close(io["logits"], logits, "logits after move and load");
    }

    static void AssertPartsAreViews(FusedLinear fused, ScalarType dtype)
    {
        using var _ = no_grad();
        var x = randn(1, 8, dtype: dtype);
        foreach (var part in fused.Parts)
        {
            Assert.Equal(dtype, part.weight.dtype);
            var before = fused.Forward(x);
            part.weight.add_(1.0); // writing into a part must change the joint result
            part.bias!.add_(1.0);
            Assert.False(before.allclose(fused.Forward(x)), "the part's weight is not a view of the joint tensor");
            TensorAssert.Close(cat(fused.Parts.Select(p => p.call(x)).ToArray(), -1), fused.Forward(x), "parts vs joint");
        }
    }

    static FusedLinear Randomised(FusedLinear fused)
    {
        using var _ = no_grad();
        foreach (var part in fused.Parts)
        {
            part.weight.normal_();
            part.bias!.normal_();
        }
        return fused;
    }
}
