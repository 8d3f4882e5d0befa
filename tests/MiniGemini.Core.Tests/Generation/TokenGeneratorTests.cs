using MiniGemini.Checkpoints;
using MiniGemini.Modeling;
using MiniGemini.Generation;
using MiniGemini.Tests.Llm;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace MiniGemini.Tests.Generation;

public sealed class TokenGeneratorTests
{
    static int[][] Rows(IEnumerable<GeneratedTokens> steps)
    {
        var list = steps.ToList();
        return Enumerable.Range(0, list[0].TokenIds.Length).Select(b => list.Select(s => s.TokenIds[b]).ToArray()).ToArray();
    }

    /// <summary>Greedy decoding that never stops early.</summary>
    static GenerationOptions Greedy(int maxNewTokens) => new() { MaxNewTokens = maxNewTokens, EosTokenIds = [] };

    static GenerationOptions Sampling(long? seed) =>
        new() { MaxNewTokens = 16, Temperature = 3.0, TopK = 0, Seed = seed, EosTokenIds = [] };

    [Fact]
    public void Sampling_with_a_seed_is_reproducible_and_differs_across_seeds()
    {
        using var llm = TinyModels.Create(LlmFamily.Llama);
        using var scope = NewDisposeScope();
        var prompt = TinyModels.Prompt(llm, 2, 5);
        var first = Rows(TokenGenerator.Generate(llm, prompt, null, Sampling(42)));
        var again = Rows(TokenGenerator.Generate(llm, prompt, null, Sampling(42)));
        var other = Rows(TokenGenerator.Generate(llm, prompt, null, Sampling(43)));
        Assert.Equal(first, again);
        Assert.NotEqual(first, other);
        var greedy = Rows(TokenGenerator.Generate(llm, prompt, null, Greedy(16)));
        Assert.NotEqual(greedy, first); // a temperature of 3 over 64 tokens does not follow the argmax for 16 steps
    }

    [Fact]
    public void Top_k_of_one_samples_the_greedy_tokens()
    {
        using var llm = TinyModels.Create(LlmFamily.Mixtral);
        using var scope = NewDisposeScope();
        var prompt = TinyModels.Prompt(llm, 2, 6);
        var greedy = Rows(TokenGenerator.Generate(llm, prompt, null, Greedy(10)));
        var topOne = Rows(TokenGenerator.Generate(llm, prompt, null, Sampling(5) with { MaxNewTokens = 10, TopK = 1 }));
        Assert.Equal(greedy, topOne);
    }

    [Fact]
    public void An_eos_ends_its_row_which_then_yields_padding_while_other_rows_go_on()
    {
        using var llm = TinyModels.Create(LlmFamily.Gemma);
        using var scope = NewDisposeScope();
        var prompt = TinyModels.Prompt(llm, 2, 6);
        var free = Rows(TokenGenerator.Generate(llm, prompt, null, Greedy(10)));
        int eos = free[0][2];
        Assert.DoesNotContain(eos, free[0][..2]);
        var steps = TokenGenerator.Generate(llm, prompt, null, new GenerationOptions { MaxNewTokens = 10, EosTokenIds = [eos], PadTokenId = 0 }).ToList();

        for (int b = 0; b < 2; b++)
        {
            int end = Array.IndexOf(free[b], eos);
            for (int s = 0; s < steps.Count; s++)
            {
                bool running = end < 0 || s <= end;
                Assert.Equal(running ? free[b][s] : 0, steps[s].TokenIds[b]);
                Assert.Equal(running, steps[s].Emitted[b]);
                Assert.Equal(end >= 0 && s >= end, steps[s].Finished[b]);
            }
        }
        // The loop ends as soon as every row has finished.
        int lastEnd = free.Max(r => Array.IndexOf(r, eos) is var i && i >= 0 ? i : int.MaxValue);
        Assert.Equal(Math.Min(10, lastEnd == int.MaxValue ? 10 : lastEnd + 1), steps.Count);

        var single = TokenGenerator.Generate(llm, prompt.narrow(0, 0, 1), null,
            new GenerationOptions { MaxNewTokens = 10, EosTokenIds = [eos] }).ToList();
        Assert.Equal(3, single.Count);
        Assert.True(single[^1].Finished[0]);
    }

    [Fact]
    public void Cancellation_stops_before_the_next_token()
    {
        using var llm = TinyModels.Create(LlmFamily.Llama);
        using var scope = NewDisposeScope();
        var prompt = TinyModels.Prompt(llm, 1, 4);
        using var cts = new CancellationTokenSource();
        int received = 0;
        Assert.Throws<OperationCanceledException>(() =>
        {
            foreach (var _ in TokenGenerator.Generate(llm, prompt, null, Greedy(50), cts.Token))
                if (++received == 3) cts.Cancel();
        });
        Assert.Equal(3, received);
    }

    [Fact]
    public async Task The_async_stream_matches_the_sync_one_and_honours_cancellation()
    {
        using var llm = TinyModels.Create(LlmFamily.Llama);
        var prompt = TinyModels.Prompt(llm, 2, 4).DetachFromDisposeScope();
        try
        {
            var options = Greedy(8);
            var sync = Rows(TokenGenerator.Generate(llm, prompt, null, options));
            var steps = new List<GeneratedTokens>();
            await foreach (var step in TokenGenerator.GenerateAsync(llm, prompt, null, options))
                steps.Add(step);
            Assert.Equal(sync, Rows(steps));

            using var cts = new CancellationTokenSource();
            int received = 0;
            await Assert.ThrowsAnyAsync<OperationCanceledException>(async () =>
            {
                await foreach (var _ in TokenGenerator.GenerateAsync(llm, prompt, null, options with { MaxNewTokens = 50 }, cts.Token))
                    if (++received == 2) cts.Cancel();
            });
            Assert.Equal(2, received);
        }
        finally
        {
            prompt.Dispose();
        }
    }

    [Fact]
    public void Context_overflow_is_refused_before_any_work()
    {
        using var llm = TinyModels.Create(LlmFamily.Llama, maxPositions: 16);
        using var scope = NewDisposeScope();
        var prompt = TinyModels.Prompt(llm, 1, 10);
        var e = Assert.Throws<ContextLengthExceededException>(() =>
            TokenGenerator.Generate(llm, prompt, null, new GenerationOptions { MaxNewTokens = 7 }));
        Assert.Equal(17, e.Requested);
        Assert.Equal(16, e.Limit);
        Assert.Contains("max_position_embeddings", e.Message);
        Assert.Equal(6, TokenGenerator.Generate(llm, prompt, null, Greedy(6)).Count());
    }

    [Fact]
    public void A_right_padded_mask_is_refused()
    {
        using var llm = TinyModels.Create(LlmFamily.Llama);
        using var scope = NewDisposeScope();
        var prompt = TinyModels.Prompt(llm, 2, 4);
        var mask = ones(2, 4, ScalarType.Int64);
        mask[1, 3] = 0;
        var e = Assert.Throws<ArgumentException>(() => TokenGenerator.Generate(llm, prompt, mask, new GenerationOptions()));
        Assert.Contains("left padding", e.Message);
    }

    /// <summary>After the first steps, further decode steps leave the number of live native tensors unchanged.</summary>
    [Fact]
    public void Decoding_does_not_grow_the_number_of_live_tensors()
    {
        using var llm = TinyModels.Create(LlmFamily.Mixtral);
        var prompt = TinyModels.Prompt(llm, 2, 5).DetachFromDisposeScope();
        var mask = ones(2, 5, ScalarType.Int64).DetachFromDisposeScope();
        using (no_grad()) mask[0, 0] = 0;
        try
        {
            var stats = DisposeScopeManager.Statistics;
            long before = stats.ThreadTotalLiveCount;
            var options = Greedy(40);
            using (var steps = TokenGenerator.Generate(llm, prompt, mask, options).GetEnumerator())
            {
                for (int i = 0; i < 3; i++) Assert.True(steps.MoveNext());
                long afterThree = stats.ThreadTotalLiveCount;
                Assert.True(afterThree > before, "the session holds its cache while running");
                for (int i = 3; i < 40; i++) Assert.True(steps.MoveNext());
                Assert.Equal(afterThree, stats.ThreadTotalLiveCount);
            }
            // Leaving the enumeration (here after the last token; a break does the same) releases everything.
            Assert.Equal(before, stats.ThreadTotalLiveCount);

            foreach (var step in TokenGenerator.Generate(llm, prompt, mask, options))
                if (step.Step == 4) break;
            Assert.Equal(before, stats.ThreadTotalLiveCount);
        }
        finally
        {
            prompt.Dispose();
            mask.Dispose();
        }
    }
}
