using System.Diagnostics;
using System.Runtime.InteropServices;
using MiniGemini.Generation;
using MiniGemini.Modeling;
using MiniGemini.Tests.Parity;
using MiniGemini.Text;
using Xunit;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace MiniGemini.Tests.Pipeline;

/// <summary>
/// The inference path while other threads collect garbage and run finalizers without pause. A TorchSharp Scalar
/// that nothing references any more once its handle has been read (a number converted implicitly at a call site, or
/// the alpha of 1 that <c>a + b</c> passes) can then be freed by its finalizer while libtorch still reads it, which
/// shows as libtorch errors (<c>toFloat</c> in Scalar.h) or as silently different numbers.
/// </summary>
public sealed class ScalarLifetimeTests(ITestOutputHelper output)
{
    static readonly TimeSpan Budget = TimeSpan.FromSeconds(12);
    const int MaxIterations = 2000;
    const int Collectors = 2;

    [Fact]
    public void Inference_under_constant_garbage_collection_matches_a_quiet_run_bit_for_bit()
    {
        var fixture = MgmFixture.Load("reference/mgm-tiny");
        using var model = fixture.Build();
        using var io = FixtureIo.Open(fixture.Folder);
        using var hr = io["pixel_values_hr"];
        var ids = ImageSlotTokenizer.Tokenize(model.Tokenizer, fixture.Prompt);

        var expected = Run(model, hr, ids);

        using var stop = new CancellationTokenSource();
        var collectors = Enumerable.Range(0, Collectors).Select(_ => new Thread(() => CollectUntil(stop.Token)) { IsBackground = true }).ToArray();
        foreach (var collector in collectors) collector.Start();
        var failures = new List<string>();
        int iterations = 0;
        var clock = Stopwatch.StartNew();
        try
        {
            while (iterations < MaxIterations && clock.Elapsed < Budget)
            {
                iterations++;
                try
                {
                    var actual = Run(model, hr, ids);
                    if (expected.Difference(actual) is { } difference) failures.Add($"run {iterations}: {difference}");
                }
                catch (Exception e)
                {
                    failures.Add($"run {iterations}: {e.GetType().Name}: {e.Message.Split('\n')[0]} {Site(e)}");
                }
            }
        }
        finally
        {
            stop.Cancel();
            foreach (var collector in collectors) collector.Join();
        }

        output.WriteLine($"{iterations} runs in {clock.Elapsed.TotalSeconds:F1} s under {Collectors} collecting threads, {failures.Count} failed");
        foreach (var failure in failures.Take(20)) output.WriteLine(failure);
        Assert.True(failures.Count == 0, $"{failures.Count} of {iterations} runs failed; first: {failures.FirstOrDefault()}");
    }

    /// <summary>The innermost frame of the library in an exception's stack trace.</summary>
    static string Site(Exception e) =>
        e.StackTrace?.Split('\n').Select(line => line.Trim()).FirstOrDefault(line => line.StartsWith("at MiniGemini.", StringComparison.Ordinal)
            && !line.StartsWith("at MiniGemini.Tests.", StringComparison.Ordinal)) ?? "";

    /// <summary>
    /// Collections back to back, each followed by the finalizers it made runnable, with garbage in between. Mostly
    /// gen-0 collections: they are short, so there are many, and a temporary Scalar is young.
    /// </summary>
    static void CollectUntil(CancellationToken stop)
    {
        var keep = new object[64];
        for (int i = 0; !stop.IsCancellationRequested; i++)
        {
            keep[i % keep.Length] = new byte[1 + i % 4096];
            GC.Collect(i % 16 == 0 ? GC.MaxGeneration : 0);
            GC.WaitForPendingFinalizers();
        }
    }

    /// <summary>
    /// One pass over the inference path: the image side with the default and with the tensor-operation mining backend,
    /// the prefill logits, and a few greedy and sampled (top-k, top-p, repetition penalty) steps for a batch with a
    /// left-padded row.
    /// </summary>
    static Outputs Run(MiniGeminiModel model, Tensor hr, int[] ids)
    {
        using var scope = NewDisposeScope();
        var mining = model.Module.Mining!;
        using var autoFeatures = model.Module.Encode(hr);
        ImageFeatures features;
        mining.Backend = RegionBackend.TensorOps;
        try { features = model.Module.Encode(hr); }
        finally { mining.Backend = RegionBackend.Auto; }
        using var _ = features;

        var embeds = model.Module.Splice(ids, features.Tokens).unsqueeze(0);                      // [1, L, H]
        long length = embeds.shape[1];
        var logits = model.Module.Forward(embeds, arange(length).unsqueeze(0), allLogits: true); // [1, L, V]

        var batch = cat([embeds, embeds], 0);                                              // [2, L, H]
        var mask = ones([2, length], ScalarType.Int64);
        mask[1].narrow(0, 0, 5).zero_();                                                   // row 1: 5 padding positions
        var greedy = new GenerationOptions { MaxNewTokens = 4, EosTokenIds = [] };
        var sampled = greedy with { Temperature = 0.8, TopK = 20, TopP = 0.9, RepetitionPenalty = 1.3, Seed = 7 };
        return new Outputs(
            Floats(autoFeatures.Tokens),
            Floats(features.Tokens),
            Floats(logits),
            Tokens(TokenGenerator.Generate(model.Module, batch, mask, greedy)),
            Tokens(TokenGenerator.Generate(model.Module, batch, mask, sampled)));
    }

    static float[] Floats(Tensor x) => x.to(ScalarType.Float32).contiguous().cpu().data<float>().ToArray();

    static int[] Tokens(IEnumerable<GeneratedTokens> steps) => steps.SelectMany(step => step.TokenIds).ToArray();

    sealed record Outputs(float[] AutoImageTokens, float[] TensorOpsImageTokens, float[] Logits, int[] Greedy, int[] Sampled)
    {
        /// <summary>The first output that differs in any bit, or null.</summary>
        public string? Difference(Outputs other) =>
            !SameBits(AutoImageTokens, other.AutoImageTokens) ? "image tokens (default mining backend) differ"
            : !SameBits(TensorOpsImageTokens, other.TensorOpsImageTokens) ? "image tokens (tensor-op mining) differ"
            : !SameBits(Logits, other.Logits) ? "prefill logits differ"
            : !Greedy.SequenceEqual(other.Greedy) ? "greedy tokens differ"
            : !Sampled.SequenceEqual(other.Sampled) ? "sampled tokens differ"
            : null;

        static bool SameBits(float[] a, float[] b) =>
            MemoryMarshal.Cast<float, int>(a).SequenceEqual(MemoryMarshal.Cast<float, int>(b));
    }
}
