using MiniGemini.Checkpoints;
using MiniGemini.Modeling;
using MiniGemini.Generation;
using MiniGemini.Tests.Parity;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace MiniGemini.Tests.Llm;

public sealed class LlmBehaviourTests
{
    /// <summary>Decode steps take the single-query path (query heads grouped per key/value head, no repeat_kv), the full forward the general one.</summary>
    [Theory]
    [MemberData(nameof(TinyModels.FamiliesAndEagerAttention), MemberType = typeof(TinyModels))]
    public void Cached_decoding_equals_the_full_forward_at_every_step(LlmFamily family, bool eager)
    {
        var options = new LlmOptions { Attention = eager ? AttentionKind.Eager : AttentionKind.Sdpa };
        using var llm = TinyModels.Create(family, options: options);
        using var scope = NewDisposeScope();
        var embeds = TinyModels.Prompt(llm, batch: 2, length: 12);
        var full = llm.Forward(embeds, LlmParityTests.Positions(2, 12), allLogits: true);  // [2, 12, V]

        using var cache = llm.CreateCache(2, 12);
        var prefill = llm.Forward(embeds.narrow(1, 0, 5), LlmParityTests.Positions(2, 5), cache: cache);
        TensorAssert.Close(full.select(1, 4), prefill, "prefill");
        for (int t = 5; t < 12; t++)
        {
            var step = llm.Forward(embeds.narrow(1, t, 1), full_like(LlmParityTests.Positions(2, 1), t), cache: cache);
            TensorAssert.Close(full.select(1, t), step, $"cached step at position {t}");
        }
        Assert.Equal(12, cache.Length);
    }

    [Theory]
    [MemberData(nameof(TinyModels.Families), MemberType = typeof(TinyModels))]
    public void A_chunk_after_cached_positions_sees_them_causally(LlmFamily family)
    {
        using var llm = TinyModels.Create(family);
        using var scope = NewDisposeScope();
        var embeds = TinyModels.Prompt(llm, batch: 1, length: 10);
        var full = llm.Forward(embeds, LlmParityTests.Positions(1, 10), allLogits: true);
        using var cache = llm.CreateCache(1, 10);
        llm.Forward(embeds.narrow(1, 0, 4), LlmParityTests.Positions(1, 4), cache: cache);
        var chunk = llm.Forward(embeds.narrow(1, 4, 6), arange(4, 10).unsqueeze(0), cache: cache, allLogits: true);
        TensorAssert.Close(full.narrow(1, 4, 6), chunk, "second chunk");
    }

    /// <summary>Row 1 is the first 7 tokens of a prompt, left-padded with 5 pads: its logits and greedy tokens equal the row alone.</summary>
    [Theory]
    [MemberData(nameof(TinyModels.Families), MemberType = typeof(TinyModels))]
    public void A_left_padded_batch_equals_each_row_alone(LlmFamily family)
    {
        using var llm = TinyModels.Create(family);
        using var scope = NewDisposeScope();
        var prompts = TinyModels.Prompt(llm, batch: 2, length: 12);
        var longRow = prompts.narrow(0, 0, 1);                     // [1, 12, H]
        var shortRow = prompts.narrow(0, 1, 1).narrow(1, 0, 7);    // [1, 7, H]
        var padded = cat([longRow, cat([zeros(1, 5, llm.Config.HiddenSize), shortRow], 1)], 0);
        var mask = ones(2, 12, ScalarType.Int64);
        mask[1, TensorIndex.Slice(0, 5)] = 0;

        var batchTokens = LlmParityTests.GenerateGreedy(llm, padded, 8, mask);
        TensorAssert.Equal(LlmParityTests.GenerateGreedy(llm, longRow, 8), batchTokens.narrow(0, 0, 1), "row 0 tokens");
        TensorAssert.Equal(LlmParityTests.GenerateGreedy(llm, shortRow, 8), batchTokens.narrow(0, 1, 1), "row 1 tokens");

        var positions = mask.cumsum(1).sub(1).clamp_min(0);
        var batchLogits = llm.Forward(padded, positions, mask, allLogits: true);
        Assert.False(batchLogits.isnan().any().item<bool>(), "padding queries must not produce NaN");
        TensorAssert.Close(llm.Forward(longRow, LlmParityTests.Positions(1, 12), allLogits: true), batchLogits.narrow(0, 0, 1), "row 0 logits");
        TensorAssert.Close(llm.Forward(shortRow, LlmParityTests.Positions(1, 7), allLogits: true),
            batchLogits.narrow(0, 1, 1).narrow(1, 5, 7), "row 1 logits (real positions)");
    }

    [Fact]
    public void A_tied_head_stays_tied_after_a_dtype_move()
    {
        var folder = FixtureCatalog.Bundled("llm-gemma");
        using var io = FixtureIo.Open(folder);
        using var llm = CausalLanguageModel.FromPretrained(folder);
        var module = (CausalLanguageModel)llm;
        Assert.DoesNotContain(module.state_dict().Keys, k => k.StartsWith("lm_head", StringComparison.Ordinal));

        llm.To(CPU, ScalarType.Float64);
        using var scope = NewDisposeScope();
        var ids = io["input_ids"];
        var logits = llm.Forward(llm.Embed(ids), LlmParityTests.Positions(2, 12), allLogits: true);
        Assert.Equal(ScalarType.Float64, module.model.embed_tokens.weight.dtype);
        TensorAssert.Close(io["logits"], logits, "float64 logits");

        // The head projects with the (moved) embedding table itself: zero a row no input uses and its logit is 0.
        long unused = Enumerable.Range(0, llm.Config.VocabSize).First(v => !ids.eq(v).any().item<bool>());
        using (no_grad()) module.model.embed_tokens.weight[unused].zero_();
        var after = llm.Forward(llm.Embed(ids), LlmParityTests.Positions(2, 12), allLogits: true);
        Assert.Equal(ScalarType.Float64, after.dtype); // float64 logits stay float64 (only half precision is widened)
        Assert.Equal(0.0, after.select(2, unused).abs().max().item<double>());
    }

    [Fact]
    public void Rotary_frequencies_stay_float32_when_the_model_moves_to_half_precision()
    {
        using var llm = TinyModels.Create(LlmFamily.Llama);
        var rotary = ((CausalLanguageModel)llm).model.rotary_emb;
        using var scope = NewDisposeScope();
        var expected = rotary.InverseFrequencies.clone();
        llm.To(CPU, ScalarType.BFloat16);
        Assert.Equal(ScalarType.BFloat16, llm.DType);
        Assert.True(expected.Equals(rotary.InverseFrequencies), "inv_freq must keep its float32 values");
        var logits = llm.Forward(TinyModels.Prompt(llm, 1, 4), LlmParityTests.Positions(1, 4));
        Assert.Equal(ScalarType.Float32, logits.dtype);
        Assert.False(logits.isnan().any().item<bool>());
    }

    [Fact]
    public void Every_tensor_follows_a_device_move_including_the_rotary_frequencies()
    {
        using var llm = TinyModels.Create(LlmFamily.Gemma);
        var module = (CausalLanguageModel)llm;
        llm.To(new Device(DeviceType.META), ScalarType.Float32);
        Assert.All(module.parameters(), p => Assert.Equal(DeviceType.META, p.device_type));
        Assert.Equal(DeviceType.META, module.model.rotary_emb.InverseFrequencies.device_type);
    }

    [Theory]
    [InlineData("mgm-tiny")]
    [InlineData("mgm-tiny-embedded-towers")]
    public void Vision_keys_beside_the_LLM_are_skipped_by_rule_and_nothing_else_is(string name)
    {
        var folder = Path.Combine(FixtureCatalog.Bundled(name), "model");
        var config = LlmConfig.Load(Path.Combine(folder, "config.json"));
        using var source = Checkpoint.Open(folder);
        using var llm = CausalLanguageModel.Load(source, config);
        var module = (CausalLanguageModel)llm;
        var report = StateDictLoader.Compare(module.state_dict(), source, "", new LoadOptions { IsForeign = k => CausalLanguageModel.IsForeign(k, false) });
        Assert.Empty(report.Unexpected);
        Assert.Empty(report.Missing);
        Assert.NotEmpty(report.Skipped);
        Assert.All(report.Skipped, key => Assert.Matches("^model\\.(vision_tower|vision_tower_aux|vlm_uni_|mm_projector)", key));
        Assert.Equal(source.Keys.Count, report.Loaded.Count + report.Skipped.Count);

        // The rule is not a blanket tolerance: a key that is neither LLM nor vision fails the load and is named.
        var dir = Directory.CreateTempSubdirectory("mgm-llm-").FullName;
        try
        {
            using var scope = NewDisposeScope();
            var tensors = source.Keys.ToDictionary(k => k, source.Load);
            tensors["model.unknown_adapter.weight"] = zeros(3);
            var path = Path.Combine(dir, "model.safetensors");
            SafetensorsWriter.Write(path, tensors);
            using var withExtra = Checkpoint.Open(path);
            var e = Assert.Throws<ModelLoadException>(() => CausalLanguageModel.Load(withExtra, config));
            Assert.NotNull(e.Report);
            Assert.Contains("unexpected: model.unknown_adapter.weight", e.Message);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public void A_missing_layer_weight_is_reported_by_key()
    {
        var folder = FixtureCatalog.Bundled("llm-mixtral");
        using var source = Checkpoint.Open(folder);
        var dir = Directory.CreateTempSubdirectory("mgm-llm-").FullName;
        try
        {
            using var scope = NewDisposeScope();
            var tensors = source.Keys.Where(k => k != "model.layers.1.block_sparse_moe.experts.3.w2.weight").ToDictionary(k => k, source.Load);
            var path = Path.Combine(dir, "model.safetensors");
            SafetensorsWriter.Write(path, tensors);
            using var partial = Checkpoint.Open(path);
            var e = Assert.Throws<ModelLoadException>(() =>
                CausalLanguageModel.Load(partial, LlmConfig.Load(Path.Combine(folder, "config.json"))));
            Assert.NotNull(e.Report);
            Assert.Equal("model.layers.1.block_sparse_moe.experts.3.w2.weight", e.TensorName);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public void Bad_inputs_are_rejected_with_what_is_wrong()
    {
        using var llm = TinyModels.Create(LlmFamily.Llama);
        using var scope = NewDisposeScope();
        var e1 = Assert.Throws<ArgumentOutOfRangeException>(() => llm.Embed(tensor(new long[] { 1, -200, 3 }).unsqueeze(0)));
        Assert.Contains("-200", e1.Message);
        Assert.Throws<ArgumentOutOfRangeException>(() => llm.Embed(tensor(new long[] { 64 }).unsqueeze(0)));
        var embeds = TinyModels.Prompt(llm, 2, 4);
        var e2 = Assert.Throws<ArgumentException>(() => llm.Forward(embeds, LlmParityTests.Positions(2, 3)));
        Assert.Contains("positionIds must be [2, 4]", e2.Message);
        var e3 = Assert.Throws<ArgumentException>(() => llm.Forward(embeds.to(ScalarType.Float64), LlmParityTests.Positions(2, 4)));
        Assert.Contains("Float64", e3.Message);
        Assert.Throws<ArgumentException>(() => llm.Forward(embeds, LlmParityTests.Positions(2, 4), ones(2, 5)));
    }

    [Fact]
    public void A_full_cache_refuses_more_tokens_before_writing_anything()
    {
        using var llm = TinyModels.Create(LlmFamily.Llama);
        using var scope = NewDisposeScope();
        using var cache = llm.CreateCache(1, 6);
        llm.Forward(TinyModels.Prompt(llm, 1, 4), LlmParityTests.Positions(1, 4), cache: cache);
        var e = Assert.Throws<ContextLengthExceededException>(() =>
            llm.Forward(TinyModels.Prompt(llm, 1, 3), arange(4, 7).unsqueeze(0), cache: cache));
        Assert.Equal(7, e.Requested);
        Assert.Equal(6, e.Limit);
        Assert.Equal(4, cache.Length);
    }

    [Fact]
    public void Gemma_can_switch_to_exact_gelu()
    {
        var folder = FixtureCatalog.Bundled("llm-gemma");
        using var io = FixtureIo.Open(folder);
        using var tanh = CausalLanguageModel.FromPretrained(folder);
        using var exact = CausalLanguageModel.FromPretrained(folder, options: new LlmOptions { HiddenActOverride = "gelu" });
        using var scope = NewDisposeScope();
        var ids = io["input_ids"];
        var a = tanh.Forward(tanh.Embed(ids), LlmParityTests.Positions(2, 12));
        var b = exact.Forward(exact.Embed(ids), LlmParityTests.Positions(2, 12));
        var difference = (a - b).abs().max().item<float>();
        Assert.InRange(difference, 1e-6f, 1.0f); // close, but a different function
    }
}
