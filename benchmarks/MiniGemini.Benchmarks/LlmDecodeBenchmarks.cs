using BenchmarkDotNet.Attributes;
using MiniGemini.Checkpoints;
using MiniGemini.Modeling;
using MiniGemini.Generation;
using TorchSharp;
using static TorchSharp.torch;

namespace MiniGemini.Benchmarks;

/// <summary>Llama shapes for decoding benchmarks (random weights; speed does not depend on their values).</summary>
public static class LlmShapes
{
    /// <summary>A Llama config of the given size.</summary>
    public static LlmConfig Llama(int hidden, int layers, int heads, int ffn, int vocab, int kvHeads = 0, int maxPositions = 4096) => new()
    {
        Family = LlmFamily.Llama,
        VocabSize = vocab,
        HiddenSize = hidden,
        IntermediateSize = ffn,
        NumHiddenLayers = layers,
        NumAttentionHeads = heads,
        NumKeyValueHeads = kvHeads > 0 ? kvHeads : heads,
        HeadDim = hidden / heads,
        RmsNormEps = 1e-5,
        MaxPositionEmbeddings = maxPositions,
    };

    /// <summary>The fixtures' size: hidden 96, 2 layers, vocab 400.</summary>
    public static LlmConfig Tiny => Llama(96, 2, 6, 192, 400);

    /// <summary>A mid-size model: hidden 512, 8 layers, 8 heads, FFN 1376, vocab 32000 (about 42M parameters).</summary>
    public static LlmConfig Mid => Llama(512, 8, 8, 1376, 32000);

    /// <summary>Vicuna-7B / MGM-7B: hidden 4096, 32 layers, 32 heads, FFN 11008, vocab 32000.</summary>
    public static LlmConfig Llama7B => Llama(4096, 32, 32, 11008, 32000);
}

/// <summary>
/// Greedy decoding of <see cref="NewTokens"/> tokens after a <see cref="PromptLength"/>-token prompt, on CPU in float32 (one thread).
/// Baseline: no cache, the whole sequence re-run for every token (the sequence grows by concatenation). The cached
/// forward loop is the model alone; the generator adds sampling, EOS bookkeeping and the per-token host read, so
/// their difference is the loop's per-token overhead. The generator runs each decode step op by op (eager) and as one
/// compiled TorchScript function, on the same weights. Times are per generated token.
/// </summary>
[MemoryDiagnoser]
[SimpleJob(launchCount: 1, warmupCount: 2, iterationCount: 6)]
public class LlmDecodeBenchmarks
{
    const int PromptLength = 32;
    const int NewTokens = 32;

    CausalLanguageModel _llm = null!;      // op by op
    CausalLanguageModel _compiled = null!; // the same weights, compiled decode step
    Tensor _prompt = null!;

    /// <summary>Model size.</summary>
    [Params("tiny", "mid")]
    public string Size { get; set; } = "tiny";

    /// <summary>Builds the model and a random prompt.</summary>
    [GlobalSetup]
    public void Setup()
    {
        // One intra-op thread: on a small shared VM, OpenMP threads that wait on each other at every op cost far more
        // than splitting the small ops of a decode step gains (docs/benchmarks.md has the measurement).
        torch.set_num_threads(1);
        var config = Size == "mid" ? LlmShapes.Mid : LlmShapes.Tiny;
        _llm = CausalLanguageModel.CreateRandom(config, seed: 1, options: new LlmOptions { CompileDecodeStep = false });
        _compiled = CausalLanguageModel.CreateRandom(config, seed: 1, options: new LlmOptions { CompileDecodeStep = true });
        using var generator = new Generator(2);
        _prompt = _llm.Embed(randint(0, _llm.Config.VocabSize, [1, PromptLength], generator: generator)).DetachFromDisposeScope();
    }

    /// <summary>Releases the model.</summary>
    [GlobalCleanup]
    public void Cleanup()
    {
        _prompt.Dispose();
        _llm.Dispose();
        _compiled.Dispose();
    }

    /// <summary>No cache: every token re-runs the whole, growing sequence.</summary>
    [Benchmark(Baseline = true, OperationsPerInvoke = NewTokens)]
    public long NoCache()
    {
        using var _ = inference_mode();
        using var scope = NewDisposeScope();
        var sequence = _prompt;
        long last = 0;
        for (int i = 0; i < NewTokens; i++)
        {
            long t = sequence.shape[1];
            var next = _llm.Forward(sequence, arange(t).unsqueeze(0)).argmax(-1);   // [1]
            last = next.item<long>();
            sequence = cat([sequence, _llm.Embed(next.view(1, 1), validate: false)], 1);
        }
        return last;
    }

    /// <summary>The model alone with the preallocated cache: prefill, then one forward and argmax per token.</summary>
    [Benchmark(OperationsPerInvoke = NewTokens)]
    public long CachedForward()
    {
        using var _ = inference_mode();
        using var cache = _llm.CreateCache(1, PromptLength + NewTokens);
        long last = 0;
        using (var scope = NewDisposeScope())
            last = _llm.Forward(_prompt, arange(PromptLength).unsqueeze(0), cache: cache).argmax(-1).item<long>();
        for (int i = 1; i < NewTokens; i++)
        {
            using var scope = NewDisposeScope();
            var embeds = _llm.Embed(tensor(new[] { last }).view(1, 1), validate: false);
            last = _llm.Forward(embeds, full(1, 1, (long)cache.Length), cache: cache).argmax(-1).item<long>();
        }
        return last;
    }

    /// <summary>The token generator (greedy), as the pipeline runs it, each decode step op by op.</summary>
    [Benchmark(OperationsPerInvoke = NewTokens)]
    public int TokenGenerator() => Generate(_llm);

    /// <summary>The token generator with the compiled decode step.</summary>
    [Benchmark(OperationsPerInvoke = NewTokens)]
    public int CompiledTokenGenerator() => Generate(_compiled);

    int Generate(CausalLanguageModel llm)
    {
        var options = new GenerationOptions { MaxNewTokens = NewTokens, EosTokenIds = [] };
        int last = 0;
        foreach (var step in MiniGemini.Generation.TokenGenerator.Generate(llm, _prompt, null, options)) last = step.TokenIds[0];
        return last;
    }
}
