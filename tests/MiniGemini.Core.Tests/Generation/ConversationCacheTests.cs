using Microsoft.Extensions.AI;
using MiniGemini.Generation;
using MiniGemini.Hosting;
using MiniGemini.Modeling;
using MiniGemini.Tests.Cli;
using MiniGemini.Tests.Pipeline;
using MiniGemini.Vision;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace MiniGemini.Tests.Generation;

/// <summary>Follow-up turns reuse image tokens and the keys and values of the conversation so far, and answer as a recomputation does.</summary>
public sealed class ConversationCacheTests
{
    static readonly GenerationOptions Greedy = new() { MaxNewTokens = 48 };
    static readonly string[] Questions =
    [
        "How many shapes are there?", "What shape is at the top left?", "What color is the shape at the top right?",
        "What digit is at the bottom left?", "Describe the image.",
    ];
    static string ExamplePicture => Path.Combine(Path.GetDirectoryName(BundledModelTests.ModelFolder)!, "example.png");

    static MiniGeminiModel Bundled(long cacheBytes) =>
        MiniGeminiBuilder.FromPretrained(BundledModelTests.ModelFolder).WithConversationCache(cacheBytes).Build();

    /// <summary>Asks <see cref="Questions"/> in one conversation about <paramref name="picture"/>, each turn carrying the answers so far.</summary>
    static List<MiniGeminiResponse> Converse(MiniGeminiModel model, ImageInput picture)
    {
        var turns = new List<ChatTurn>();
        var answers = new List<MiniGeminiResponse>();
        foreach (var question in Questions)
        {
            turns.Add(turns.Count == 0 ? ChatTurn.User(question, picture) : ChatTurn.User(question));
            var answer = model.Generate(new MiniGeminiPrompt { Turns = [.. turns] }, Greedy);
            answers.Add(answer);
            turns.Add(ChatTurn.Assistant(answer.Text));
        }
        return answers;
    }

    [Fact]
    public void Five_turns_prefill_only_what_is_new_and_answer_as_recomputation_does()
    {
        using var kept = Bundled(MiniGeminiOptions.DefaultConversationCacheBytes);
        using var recomputed = Bundled(0);
        var picture = ImageInput.FromFile(ExamplePicture);
        var withCache = Converse(kept, picture);
        var without = Converse(recomputed, picture);

        for (int turn = 0; turn < Questions.Length; turn++)
        {
            Assert.Equal(without[turn].TokenIds, withCache[turn].TokenIds);
            Assert.Equal(without[turn].PromptTokens, withCache[turn].PromptTokens);
            Assert.Equal(0, without[turn].CachedPromptTokens);
        }
        Assert.Equal(0, withCache[0].CachedPromptTokens);
        for (int turn = 1; turn < Questions.Length; turn++)
        {
            // Everything of the turn before (prompt, image and answer) is reused; only the new question is run.
            Assert.InRange(withCache[turn].CachedPromptTokens, withCache[turn - 1].PromptTokens, withCache[turn].PromptTokens - 1);
        }
        Assert.Contains("4", withCache[0].Text); // the example picture holds four shapes: the conversation is about it
    }

    [Fact]
    public void Another_picture_under_the_same_words_is_encoded_and_answered_afresh()
    {
        using var kept = Bundled(MiniGeminiOptions.DefaultConversationCacheBytes);
        using var recomputed = Bundled(0);
        var other = ImageInput.FromFile(TinyModelFixture.ImagePath);
        var first = kept.Generate(MiniGeminiPrompt.Ask("Describe the image.", ImageInput.FromFile(ExamplePicture)), Greedy);
        var second = kept.Generate(MiniGeminiPrompt.Ask("Describe the image.", other), Greedy);
        var fresh = recomputed.Generate(MiniGeminiPrompt.Ask("Describe the image.", other), Greedy);

        Assert.Equal(fresh.TokenIds, second.TokenIds);
        int textBeforeImage = kept.Processor.Tokenize(MiniGeminiPrompt.Ask("Describe the image.", other)).TakeWhile(id => id >= 0).Count();
        Assert.Equal(textBeforeImage, second.CachedPromptTokens); // the system prompt only: the image differs
        Assert.NotEqual(first.Text, second.Text);

        // In a batch (no key/value reuse), kept image tokens serve both rows and change nothing.
        var batch = kept.GenerateBatch([MiniGeminiPrompt.Ask("What shape is at the top left?", other), MiniGeminiPrompt.Ask("How many shapes are there?", other)], Greedy);
        var batchFresh = recomputed.GenerateBatch([MiniGeminiPrompt.Ask("What shape is at the top left?", other), MiniGeminiPrompt.Ask("How many shapes are there?", other)], Greedy);
        Assert.Equal(batchFresh.Select(r => r.TokenIds), batch.Select(r => r.TokenIds));
        Assert.All(batch, r => Assert.Equal(0, r.CachedPromptTokens));
    }

    [Fact]
    public async Task Chat_client_calls_that_extend_the_previous_one_report_cached_input_tokens()
    {
        using var model = Bundled(MiniGeminiOptions.DefaultConversationCacheBytes);
        using var client = new MiniGeminiChatClient(model);
        var options = new ChatOptions { MaxOutputTokens = 48, Temperature = 0 };
        List<ChatMessage> messages = [new(ChatRole.User, [new DataContent(await File.ReadAllBytesAsync(ExamplePicture), "image/png"), new TextContent("How many shapes are there?")])];
        var first = await client.GetResponseAsync(messages, options);
        messages.AddRange(first.Messages);
        messages.Add(new ChatMessage(ChatRole.User, "What shape is at the top left?"));
        var second = await client.GetResponseAsync(messages, options);

        Assert.Equal(0, first.Usage!.CachedInputTokenCount);
        Assert.InRange(second.Usage!.CachedInputTokenCount!.Value, first.Usage.InputTokenCount!.Value, second.Usage.InputTokenCount!.Value - 1);
    }

    [Fact]
    public void What_is_kept_stays_within_the_budget_and_is_all_that_generation_leaves()
    {
        const long budget = 1 << 20; // the bundled model's keys and values take 8 KiB a position: two short questions and answers
        using var model = Bundled(budget);
        var picture = ImageInput.FromFile(ExamplePicture);
        model.Generate(MiniGeminiPrompt.Ask("Hello.", picture), Greedy); // what the model makes once, on first use, is made now
        model.Conversations!.Clear();
        long before = DisposeScopeManager.Statistics.ThreadTotalLiveCount;
        var counts = new List<int>();
        foreach (var question in Questions)
        {
            model.Generate(MiniGeminiPrompt.Ask(question, picture), Greedy);
            Assert.InRange(model.Conversations!.Bytes, 1, budget);
            counts.Add(model.Conversations.Count);
        }
        // At least the picture and two answers fit; all of them (the picture and every answer) do not, so some were evicted.
        Assert.True(counts.Max() >= 3 && counts[^1] < Questions.Length + 1, $"entries kept after each question: {string.Join(", ", counts)}");
        model.Conversations!.Clear();
        Assert.Equal(0, model.Conversations.Bytes);
        Assert.Equal(before, DisposeScopeManager.Statistics.ThreadTotalLiveCount);
    }

    [Fact]
    public void Cache_keeps_the_longest_prefix_drops_dominated_and_least_recently_used_entries()
    {
        using var _ = inference_mode();
        KvCache Filled(int positions)
        {
            var cache = new KvCache(layers: 1, batch: 1, kvHeads: 1, capacity: 64, headDim: 4, ScalarType.Float32, CPU);
            cache.Advance(positions);
            return cache;
        }
        static PromptSlot[] Slots(params int[] ids) => ids.Select(id => new PromptSlot(id, null)).ToArray();
        long entryBytes = 8 * 2 * 4 * sizeof(float); // 8 positions kept (trimmed), keys and values of 4 floats each
        using var cache = new ConversationCache(budgetBytes: 2 * entryBytes, positionsPerImage: 3);

        cache.AddPrefix(Slots(1, 2, 3, 4, 5, 6, 7, 8), Filled(8));
        cache.AddPrefix(Slots(9, 9, 9, 9, 9, 9, 9, 9), Filled(8));
        Assert.Equal(2, cache.Count);
        Assert.Equal(2 * entryBytes, cache.Bytes);
        Assert.Equal(3, cache.FindPrefix(Slots(1, 2, 3, 0)).Positions);
        Assert.Equal(0, cache.FindPrefix(Slots(5)).Positions);

        // The first entry was used last, so a third one evicts the second.
        cache.AddPrefix(Slots(7, 7, 7, 7, 7, 7, 7, 7), Filled(8));
        Assert.Equal(0, cache.FindPrefix(Slots(9, 9)).Positions);
        Assert.Equal(2, cache.FindPrefix(Slots(1, 2)).Positions);

        // An image counts its positions, and matches only by its hash.
        PromptSlot[] withImage = [new(1, null), new(-200, "a"), new(2, null), new(3, null), new(4, null)];
        cache.AddPrefix(withImage, Filled(7));
        Assert.Equal(4, cache.FindPrefix([new(1, null), new(-200, "a"), new(0, null)]).Positions);
        Assert.Equal(1, cache.FindPrefix([new(1, null), new(-200, "b")]).Positions);

        // A longer conversation replaces the kept prefix it extends; an entry over the whole budget is not kept.
        cache.AddPrefix([.. withImage, new(6, null)], Filled(8));
        Assert.Equal(8, cache.FindPrefix([.. withImage, new(6, null), new(7, null)]).Positions);
        Assert.Equal(2, cache.Count);
        cache.AddPrefix(Slots(Enumerable.Range(0, 40).ToArray()), Filled(40));
        Assert.Equal(2, cache.Count);
        Assert.Equal(0, cache.FindPrefix(Slots(0, 1)).Positions);
    }
}
