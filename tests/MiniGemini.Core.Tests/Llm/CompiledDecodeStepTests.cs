using MiniGemini.Generation;
using MiniGemini.Modeling;
using MiniGemini.Tests.Parity;
using TorchSharp;
using Xunit;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace MiniGemini.Tests.Llm;

/// <summary>The compiled decode step against the op-by-op step of the same model, token by token.</summary>
public sealed class CompiledDecodeStepTests(ITestOutputHelper output)
{
    public static TheoryData<string> Cases => FixtureCatalog.Cases(FixtureKind.Llm);

    /// <summary>
    /// Every dense LLM fixture, SDPA and eager attention, one row and two left-padded rows: eight steps after a
    /// prefill, each fed the same token, give the eager step's logits and leave the same keys and values in the cache.
    /// </summary>
    [Theory]
    [MemberData(nameof(Cases))]
    public void Float32_steps_equal_the_eager_steps(string id)
    {
        var folder = FixtureCatalog.Resolve(id);
        foreach (var kind in new[] { AttentionKind.Sdpa, AttentionKind.Eager })
        {
            using var llm = CausalLanguageModel.FromPretrained(folder, options: new LlmOptions { Attention = kind, CompileDecodeStep = true });
            if (llm.Config.Family == LlmFamily.Mixtral)
            {
                Assert.Null(llm.CompiledStep()); // routing reads the host: op by op
                return;
            }
            foreach (bool padded in new[] { false, true })
            {
                double error = MaxStepDifference(llm, padded);
                output.WriteLine($"{id} {kind} {(padded ? "padded" : "one row")}: max |Δ logits| = {error:E2}");
                Assert.True(error == 0, $"{id} {kind} padded={padded}: compiled logits differ by {error:E2}"); // the same ops in the same order
            }
        }
    }

    /// <summary>
    /// Every variant of the script the writer can produce — each norm and activation, biases on attention and MLP,
    /// joint and separate projections — compiles and gives the eager step's float32 logits exactly.
    /// </summary>
    [Theory]
    [InlineData(LlmFamily.Llama, "silu", true, false, false)]
    [InlineData(LlmFamily.Llama, "gelu", false, true, true)]
    [InlineData(LlmFamily.Llama, "relu", true, true, true)]
    [InlineData(LlmFamily.Gemma, "gelu_pytorch_tanh", false, false, true)]
    [InlineData(LlmFamily.Gemma, "gelu", true, true, false)]
    public void Every_variant_of_the_script_equals_the_eager_step(LlmFamily family, string activation, bool attentionBias, bool mlpBias, bool apart)
    {
        var config = TinyModels.Config(family) with { AttentionBias = attentionBias, MlpBias = mlpBias };
        foreach (var kind in new[] { AttentionKind.Sdpa, AttentionKind.Eager })
        {
            var options = new LlmOptions { Attention = kind, HiddenActOverride = activation, CompileDecodeStep = true };
            using var llm = CausalLanguageModel.CreateRandom(config, seed: 5, std: 0.15, normJitter: 0.2, options: options);
            using (no_grad())
                foreach (var (name, p) in llm.named_parameters())
                    if (name.EndsWith(".bias", StringComparison.Ordinal)) p.normal_(0, 0.1); // biases that count
            if (apart) Separate(llm);
            Assert.Equal(!apart, llm.CompiledStep()!.Compiled.Joint);
            Assert.Equal(0, MaxStepDifference(llm, padded: true));
        }
    }

    /// <summary>Each family in bfloat16: the same logits within bfloat16 rounding, the same greedy choices.</summary>
    [Theory]
    [InlineData(LlmFamily.Llama)]
    [InlineData(LlmFamily.Gemma)]
    public void Bfloat16_steps_agree_with_the_eager_steps_within_rounding(LlmFamily family)
    {
        using var llm = TinyModels.Create(family, dtype: ScalarType.BFloat16, options: new LlmOptions { CompileDecodeStep = true });
        double error = MaxStepDifference(llm, padded: true, relative: true);
        output.WriteLine($"{family} bf16: max |Δ logits| / max |logits| = {error:E2}");
        Assert.True(error <= 2e-2, $"{family} bf16: compiled logits differ by {error:E2} of their scale");
    }

    /// <summary>A mapped checkpoint keeps q/k/v and gate/up apart; the script then runs the parts, and a move joins them and recompiles.</summary>
    [Fact]
    public void Mapped_parts_run_apart_and_a_move_writes_the_script_again()
    {
        var folder = FixtureCatalog.Bundled("llm-llama-gqa");
        using var llm = CausalLanguageModel.FromPretrained(folder, options: new LlmOptions { MapWeights = true, CompileDecodeStep = true });
        var apart = llm.CompiledStep()!;
        Assert.False(apart.Compiled.Joint);
        Assert.Equal(0, MaxStepDifference(llm, padded: false));

        llm.To(CPU, ScalarType.BFloat16);
        var joint = llm.CompiledStep()!;
        Assert.NotSame(apart, joint);
        Assert.Equal(new CompiledDecodeStep.Layout(ScalarType.BFloat16, DeviceType.CPU, Joint: true), joint.Compiled);
        Assert.Same(joint, llm.CompiledStep());
    }

    /// <summary>Generation through the compiled step gives the fixtures' greedy tokens and leaves no native tensor behind.</summary>
    [Theory]
    [MemberData(nameof(Cases))]
    public void Generation_gives_the_reference_tokens_and_leaks_nothing(string id)
    {
        var folder = FixtureCatalog.Resolve(id);
        using var io = FixtureIo.Open(folder);
        using var llm = CausalLanguageModel.FromPretrained(folder, options: new LlmOptions { CompileDecodeStep = true });
        using var embeds = llm.Embed(io["input_ids"]);
        var expected = io["greedy_tokens"];
        using (var scope = NewDisposeScope())
            TensorAssert.Equal(expected, LlmParityTests.GenerateGreedy(llm, embeds, (int)expected.shape[1]), $"{id} greedy_tokens");
        var stats = DisposeScopeManager.Statistics;
        stats.Reset();
        var options = new GenerationOptions { MaxNewTokens = 6, EosTokenIds = [] };
        for (int i = 0; i < 3; i++) _ = TokenGenerator.Generate(llm, embeds, null, options).ToList();
        Assert.Equal(0, stats.ThreadTotalLiveCount);
    }

    /// <summary>Off, the model steps op by op; by default too on a CPU (compiling gains little there).</summary>
    [Fact]
    public void Switched_off_or_by_default_on_a_CPU_the_model_steps_op_by_op()
    {
        using var off = TinyModels.Create(LlmFamily.Llama, options: new LlmOptions { CompileDecodeStep = false });
        Assert.Null(off.CompiledStep());
        using var byDefault = TinyModels.Create(LlmFamily.Llama);
        Assert.Null(byDefault.CompiledStep());
        using var on = TinyModels.Create(LlmFamily.Llama, options: new LlmOptions { CompileDecodeStep = true });
        Assert.NotNull(on.CompiledStep());
    }

    /// <summary>
    /// A compiled step that fails with a libtorch error: the model switches to the eager step for good and the same
    /// generation goes on with the same tokens.
    /// </summary>
    [Fact]
    public void A_failing_compiled_step_gives_way_to_the_eager_step()
    {
        using var reference = TinyModels.Create(LlmFamily.Llama, options: new LlmOptions { CompileDecodeStep = false });
        using var prompt = TinyModels.Prompt(reference, batch: 1, length: 5);
        var options = new GenerationOptions { MaxNewTokens = 6, EosTokenIds = [] };
        var expected = TokenGenerator.Generate(reference, prompt, null, options).Select(s => s.TokenIds[0]).ToList();

        using var llm = TinyModels.Create(LlmFamily.Llama, options: new LlmOptions { CompileDecodeStep = true });
        llm.UseCompiledStep(Failing(llm));
        Assert.Equal(expected, TokenGenerator.Generate(llm, prompt, null, options).Select(s => s.TokenIds[0]).ToList());
        Assert.Contains("compiled step fails here", llm.CompiledStepFailure!.Message);
        Assert.Null(llm.CompiledStep());
    }

    /// <summary>Gives q/k/v and gate/up tensors of their own, as a mapped checkpoint does, so that they run part by part.</summary>
    static void Separate(CausalLanguageModel llm)
    {
        string[] fused = ["q_proj", "k_proj", "v_proj", "gate_proj", "up_proj"];
        foreach (var (name, module) in llm.named_modules())
            if (module is TorchSharp.Modules.Linear linear && fused.Any(f => name.EndsWith(f, StringComparison.Ordinal)))
            {
                linear.weight = new TorchSharp.Modules.Parameter(linear.weight!.clone(), requires_grad: false);
                if (linear.bias is { } bias) linear.bias = new TorchSharp.Modules.Parameter(bias.clone(), requires_grad: false);
            }
        llm.SeparateIfLoadedApart();
    }

    /// <summary>A step whose script compiles but fails with a libtorch error when it runs.</summary>
    internal static CompiledDecodeStep Failing(CausalLanguageModel llm) => CompiledDecodeStep.FromSource("""
        def decode_step(ids: Tensor, positions: Tensor, key_mask: Optional[Tensor], entries: List[Tensor], length: int, w: List[Tensor]) -> Tensor:
            assert length < 0, "compiled step fails here"
            return ids

        """, CompiledDecodeStep.LayoutOf(llm)); // TorchScript wants the source to end with a newline

    /// <summary>
    /// Prefills two caches with the same prompt (eagerly), then runs eight steps on each, compiled and op by op, feeding
    /// both the eager step's greedy token; returns the largest logit difference (relative to the logits' scale when
    /// <paramref name="relative"/>) and checks that both caches hold the same keys and values.
    /// </summary>
    static double MaxStepDifference(CausalLanguageModel llm, bool padded, bool relative = false)
    {
        using var _ = inference_mode();
        using var scope = NewDisposeScope();
        int batch = padded ? 2 : 1, length = 7, steps = 8;
        var prompt = TinyModels.Prompt(llm, batch, length);
        var mask = padded ? ones(batch, length + steps, dtype: ScalarType.Int64) : null;
        mask?[1].narrow(0, 0, 3).fill_(0); // row 1: three padding positions on the left
        var positions = padded
            ? mask!.narrow(1, 0, length).cumsum(1).sub(1).clamp_min(0)
            : arange(length).expand(batch, length);
        using var compiledCache = llm.CreateCache(batch, length + steps);
        using var eagerCache = llm.CreateCache(batch, length + steps);
        var next = llm.Forward(prompt, positions, mask?.narrow(1, 0, length), compiledCache).argmax(-1).view(batch, 1);
        llm.Forward(prompt, positions, mask?.narrow(1, 0, length), eagerCache);
        var position = positions.select(1, -1).view(batch, 1).add(1);
        double worst = 0;
        var step = llm.CompiledStep()!;
        for (int i = 0; i < steps; i++)
        {
            var keyMask = mask?.narrow(1, 0, length + i + 1);
            var compiled = step.Run(llm, next, position, keyMask, compiledCache);
            var eager = llm.Forward(llm.Embed(next), position, keyMask, eagerCache);
            double difference = (compiled - eager).abs().max().item<float>();
            worst = Math.Max(worst, relative ? difference / eager.abs().max().item<float>() : difference);
            if (!relative) Assert.True(compiled.argmax(-1).Equals(eager.argmax(-1)), $"step {i}: another greedy token");
            next = eager.argmax(-1).view(batch, 1);
            position = position.add(1);
        }
        Assert.Equal(eagerCache.Length, compiledCache.Length);
        for (int layer = 0; layer < llm.Config.NumHiddenLayers; layer++)
        {
            var (a, b) = (compiledCache.Entries[layer].to(ScalarType.Float32), eagerCache.Entries[layer].to(ScalarType.Float32));
            double cacheDifference = (a - b).abs().max().item<float>();
            Assert.True(cacheDifference <= (relative ? 2e-2 * b.abs().max().item<float>() : 1e-5), $"layer {layer}: cached keys/values differ by {cacheDifference:E2}");
        }
        return worst;
    }
}
