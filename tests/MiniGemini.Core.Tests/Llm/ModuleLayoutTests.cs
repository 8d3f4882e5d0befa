using MiniGemini.Checkpoints;
using MiniGemini.Modeling;
using Xunit;
using static TorchSharp.torch;

namespace MiniGemini.Tests.Llm;

public sealed class ModuleLayoutTests
{
    [Fact]
    public void Module_keys_are_the_checkpoint_keys_including_optional_biases()
    {
        var config = TinyModels.Config(LlmFamily.Llama) with { AttentionBias = true, MlpBias = true };
        using var llm = CausalLanguageModel.CreateRandom(config, seed: 1);
        var keys = ((CausalLanguageModel)llm).state_dict().Keys.ToHashSet();
        string[] expected =
        [
            "model.embed_tokens.weight", "model.norm.weight", "lm_head.weight",
            "model.layers.1.input_layernorm.weight", "model.layers.1.post_attention_layernorm.weight",
            "model.layers.1.self_attn.q_proj.weight", "model.layers.1.self_attn.q_proj.bias",
            "model.layers.1.self_attn.k_proj.bias", "model.layers.1.self_attn.v_proj.bias", "model.layers.1.self_attn.o_proj.bias",
            "model.layers.1.mlp.gate_proj.bias", "model.layers.1.mlp.up_proj.weight", "model.layers.1.mlp.down_proj.bias",
        ];
        Assert.All(expected, key => Assert.Contains(key, keys));
        Assert.Equal(3 + 2 * (2 + 8 + 6), keys.Count);
        Assert.DoesNotContain(keys, k => k.Contains("rotary_emb", StringComparison.Ordinal)); // non-persistent, as in HF
    }

    [Fact]
    public void Mixtral_experts_use_the_released_per_expert_layout()
    {
        using var llm = TinyModels.Create(LlmFamily.Mixtral);
        var state = ((CausalLanguageModel)llm).state_dict();
        Assert.Equal([4, 32], state["model.layers.0.block_sparse_moe.gate.weight"].shape);
        Assert.Equal([48, 32], state["model.layers.1.block_sparse_moe.experts.3.w1.weight"].shape);
        Assert.Equal([32, 48], state["model.layers.1.block_sparse_moe.experts.3.w2.weight"].shape);
        Assert.Equal([48, 32], state["model.layers.1.block_sparse_moe.experts.3.w3.weight"].shape);
        Assert.DoesNotContain(state.Keys, k => k.Contains(".mlp.", StringComparison.Ordinal));
    }

    /// <summary>Expected values computed from transformers' <c>_compute_llama3_parameters</c> (Llama-3.1: θ 5e5, factor 8, 1/4, 8192).</summary>
    [Theory]
    [InlineData(0, 1.0)]                       // high frequency: unchanged
    [InlineData(20, 0.016560440080994446)]
    [InlineData(29, 0.002166570763503359)]     // medium: smoothed between the two
    [InlineData(32, 0.0005248461609929547)]
    [InlineData(34, 0.00017850781276799638)]
    [InlineData(40, 3.428102195952591e-05)]    // low frequency: divided by the factor
    [InlineData(63, 3.068925988914511e-07)]
    public void Llama3_rope_scaling_rescales_the_frequencies(int index, double expected)
    {
        var scaling = new RopeScaling("llama3", 8.0, 1.0, 4.0, 8192);
        using var rotary = new RotaryEmbedding(128, 500000.0, scaling, CPU);
        var actual = rotary.InverseFrequencies[index].item<float>();
        Assert.Equal(expected, actual, expected * 2e-6);
    }
}
