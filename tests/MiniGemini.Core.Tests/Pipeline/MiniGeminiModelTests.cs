using MiniGemini.Generation;
using MiniGemini.Modeling;
using MiniGemini.Text;
using MiniGemini.Vision;
using Xunit;
using static TorchSharp.torch;

namespace MiniGemini.Tests.Pipeline;

[Collection(TinyModelCollection.Name)]
public sealed class MiniGeminiModelTests(TinyModelFixture tiny)
{
    static readonly GenerationOptions Greedy = new() { MaxNewTokens = 12 };
    MiniGeminiModel Model => tiny.Model;
    static ImageInput Image => ImageInput.FromFile(TinyModelFixture.ImagePath);

    [Fact]
    public void Describes_an_image_with_the_template_and_reports_usage()
    {
        var answer = Model.Generate(MiniGeminiPrompt.Ask("Describe the picture.", Image), Greedy);
        var ids = Model.Processor.Tokenize(MiniGeminiPrompt.Ask("Describe the picture.", Image));
        Assert.Equal(1, ImageSlotTokenizer.CountImages(ids));
        Assert.Equal(ids.Length - 1 + Model.ImageTokensPerImage, answer.PromptTokens);
        Assert.Equal(answer.PromptTokens, Model.CountPromptTokens(MiniGeminiPrompt.Ask("Describe the picture.", Image)));
        Assert.Equal(512, Model.ContextLength);
        Assert.InRange(answer.CompletionTokens, 1, 12);
        Assert.Equal(answer.CompletionTokens == 12 ? FinishReason.Length : FinishReason.Stop, answer.FinishReason);
        Assert.Equal(Model.Tokenizer.Decode(answer.TokenIds).Trim(), answer.Text);
    }

    [Fact]
    public void Prompt_is_rendered_with_one_image_line_per_image_before_the_text()
    {
        var ids = Model.Processor.Tokenize(MiniGeminiPrompt.Ask("Compare them.", Image, Image));
        var text = Model.Tokenizer.Decode(ids.Where(i => i >= 0), skipSpecialTokens: true);
        Assert.Contains("USER: Image 1:", text);
        Assert.Contains("Image 2:", text);
        Assert.Equal(2, ImageSlotTokenizer.CountImages(ids));
    }

    [Fact]
    public async Task Sync_async_and_streaming_give_the_same_answer()
    {
        var prompt = MiniGeminiPrompt.Ask("What is in the image?", Image);
        var sync = Model.Generate(prompt, Greedy);
        var async = await Model.GenerateAsync(prompt, Greedy);
        var deltas = new List<string>();
        MiniGeminiResponse? completed = null;
        await foreach (var update in Model.GenerateStreamingAsync(prompt, Greedy))
        {
            deltas.Add(update.Text);
            completed ??= update.Completed;
        }
        Assert.Equal(sync.TokenIds, async.TokenIds);
        Assert.NotNull(completed);
        Assert.Equal(sync.TokenIds, completed.TokenIds);
        Assert.Equal(sync.Text, string.Concat(deltas).Trim());
    }

    [Fact]
    public void Batch_answers_equal_single_answers()
    {
        var prompts = new[]
        {
            MiniGeminiPrompt.Ask("Describe the picture in detail, please.", Image),
            MiniGeminiPrompt.Ask("Colors?", Image),
            MiniGeminiPrompt.Ask("No image here, just text."),
        };
        var batch = Model.GenerateBatch(prompts, Greedy);
        for (int i = 0; i < prompts.Length; i++)
            Assert.Equal(Model.Generate(prompts[i], Greedy).TokenIds, batch[i].TokenIds);
    }

    [Fact]
    public void Multi_turn_conversation_includes_earlier_answers()
    {
        var prompt = new MiniGeminiPrompt
        {
            Turns = [ChatTurn.User("What is this?", Image), ChatTurn.Assistant("A chart."), ChatTurn.User("Which color dominates?")],
        };
        var ids = Model.Processor.Tokenize(prompt);
        var text = Model.Tokenizer.Decode(ids.Where(i => i >= 0), skipSpecialTokens: false);
        Assert.Contains("ASSISTANT: A chart.</s>", text);
        Assert.EndsWith("ASSISTANT:", text.TrimEnd());
        Assert.True(Model.Generate(prompt, Greedy).CompletionTokens > 0);
    }

    [Fact]
    public void Image_request_appends_GEN_to_the_last_user_turn()
    {
        var prompt = MiniGeminiPrompt.Ask("Draw a cat.") with { GenerateImage = true };
        var text = Model.Tokenizer.Decode(Model.Processor.Tokenize(prompt), skipSpecialTokens: true);
        Assert.Contains("Draw a cat. <GEN>", text);
        var answer = Model.Generate(prompt, Greedy);
        Assert.Equal(ImageCaption.Extract(answer.Text), answer.ImagePrompt);
    }

    [Fact]
    public void System_prompt_replaces_the_template_one()
    {
        var ids = Model.Processor.Tokenize(MiniGeminiPrompt.Ask("Hi") with { SystemPrompt = "Be terse." });
        var text = Model.Tokenizer.Decode(ids, skipSpecialTokens: true);
        Assert.StartsWith("Be terse. USER: Hi ASSISTANT:", text);
    }

    [Fact]
    public void Stop_strings_cut_the_answer()
    {
        var free = Model.Generate(MiniGeminiPrompt.Ask("Say something."), Greedy with { MaxNewTokens = 16 });
        Assert.True(free.Text.Length > 2, "the reference answer must have some text to cut");
        var stop = free.Text.Substring(free.Text.Length / 2, 1);
        var cut = Model.Generate(MiniGeminiPrompt.Ask("Say something."), Greedy with { MaxNewTokens = 16, StopStrings = [stop] });
        Assert.Equal(FinishReason.Stop, cut.FinishReason);
        Assert.DoesNotContain(stop, cut.Text);
        Assert.StartsWith(cut.Text, free.Text);
    }

    [Fact]
    public async Task Cancellation_stops_generation()
    {
        using var cts = new CancellationTokenSource();
        cts.Cancel();
        Assert.ThrowsAny<OperationCanceledException>(() => Model.Generate(MiniGeminiPrompt.Ask("Hi", Image), Greedy, cts.Token));
        await Assert.ThrowsAnyAsync<OperationCanceledException>(async () =>
        {
            await foreach (var _ in Model.GenerateStreamingAsync(MiniGeminiPrompt.Ask("Hi", Image), Greedy with { MaxNewTokens = 64 }, cts.Token)) { }
        });
        // The model stays usable.
        Assert.True(Model.Generate(MiniGeminiPrompt.Ask("Hi"), Greedy).CompletionTokens > 0);
    }

    [Fact]
    public async Task Cancelled_before_during_or_after_generation_the_next_request_gives_the_same_answer()
    {
        var prompt = MiniGeminiPrompt.Ask("Describe the picture.", Image);
        var options = Greedy with { EosTokenIds = [] }; // always 12 tokens: cancellation during the stream has tokens to interrupt
        var reference = Model.Generate(prompt, options).TokenIds;

        using (var before = new CancellationTokenSource())
        {
            before.Cancel();
            Assert.ThrowsAny<OperationCanceledException>(() => Model.Generate(prompt, options, before.Token));
        }
        Assert.Equal(reference, Model.Generate(prompt, options).TokenIds);

        using (var during = new CancellationTokenSource())
        {
            await Assert.ThrowsAnyAsync<OperationCanceledException>(async () =>
            {
                await foreach (var _ in Model.GenerateStreamingAsync(prompt, options, during.Token))
                    during.Cancel(); // at the first delta
            });
        }
        Assert.Equal(reference, Model.Generate(prompt, options).TokenIds);

        using (var after = new CancellationTokenSource())
        {
            var finished = await Model.GenerateAsync(prompt, options, after.Token);
            after.Cancel();
            Assert.Equal(reference, finished.TokenIds);
        }
        Assert.Equal(reference, Model.Generate(prompt, options).TokenIds);
    }

    [Fact]
    public async Task Leaving_a_stream_early_frees_the_model_for_the_next_call()
    {
        await foreach (var _ in Model.GenerateStreamingAsync(MiniGeminiPrompt.Ask("Hi", Image), Greedy with { MaxNewTokens = 64 }))
            break;
        Assert.True(Model.Generate(MiniGeminiPrompt.Ask("Hi"), Greedy).CompletionTokens > 0);
    }

    [Fact]
    public async Task A_stream_abandoned_without_dispose_frees_the_model_when_its_generation_ends()
    {
        using var model = MiniGeminiBuilder.FromPretrained(TinyModelFixture.ModelFolder).Build();
        var abandoned = model.GenerateStreamingAsync(MiniGeminiPrompt.Ask("Hi", Image), Greedy with { MaxNewTokens = 64 }).GetAsyncEnumerator();
        Assert.True(await abandoned.MoveNextAsync());
        // The enumerator is neither read further nor disposed; the next call must still get the model.
        var next = Task.Run(() => model.Generate(MiniGeminiPrompt.Ask("Hi"), Greedy));
        var first = await Task.WhenAny(next, Task.Delay(TimeSpan.FromSeconds(60)));
        Assert.True(first == next, "The next call was still waiting a minute after the abandoned stream began.");
        Assert.True((await next).CompletionTokens > 0);
    }

    [Fact]
    public async Task A_disposed_model_refuses_every_call_naming_itself()
    {
        var model = MiniGeminiBuilder.FromPretrained(TinyModelFixture.ModelFolder).Build();
        model.Dispose();
        var generate = Assert.Throws<ObjectDisposedException>(() => model.Generate(MiniGeminiPrompt.Ask("Hi"), Greedy));
        Assert.Contains(model.Name, generate.Message);
        Assert.Throws<ObjectDisposedException>(() => model.CountPromptTokens(MiniGeminiPrompt.Ask("Hi")));
        await Assert.ThrowsAsync<ObjectDisposedException>(() => model.GenerateAsync(MiniGeminiPrompt.Ask("Hi"), Greedy));
        await Assert.ThrowsAsync<ObjectDisposedException>(async () => { await foreach (var _ in model.GenerateStreamingAsync(MiniGeminiPrompt.Ask("Hi"), Greedy)) { } });
        model.Dispose(); // twice is harmless
    }

    [Fact]
    public void A_turn_without_text_or_with_a_null_image_is_refused_when_made()
    {
        Assert.Throws<ArgumentNullException>(() => ChatTurn.User(null!));
        Assert.Throws<ArgumentNullException>(() => ChatTurn.Assistant(null!));
        Assert.Throws<ArgumentNullException>(() => ChatTurn.User("a", null!));
        Assert.Throws<ArgumentNullException>(() => ChatTurn.User("a", Image, null!));
    }

    [Fact]
    public void A_prompt_that_cannot_fit_is_refused_before_it_is_tokenized_or_its_images_are_read()
    {
        // 10 MB of text: refused from its length alone ("at least"), without encoding it.
        var huge = Assert.Throws<ContextLengthExceededException>(() => Model.Generate(MiniGeminiPrompt.Ask(new string('a', 10_000_000)), Greedy));
        Assert.Contains("at least", huge.Message);
        Assert.Contains("10000000 characters", huge.Message);
        Assert.Equal(Model.ContextLength, huge.Limit);

        // Whitespace that normalization may collapse does not count against the bound (the exact count may still refuse it).
        var spaces = Record.Exception(() => Model.Generate(MiniGeminiPrompt.Ask("Hi" + new string(' ', 20_000) + "there"), Greedy with { MaxNewTokens = 1 }));
        Assert.DoesNotContain("at least", spaces?.Message ?? "", StringComparison.Ordinal);

        // 40 images that would not even decode: the count refuses them first.
        var junk = Enumerable.Range(0, 40).Select(i => ImageInput.FromBytes(new byte[] { 1, 2, 3 }, $"junk{i}.png")).ToArray();
        var many = Assert.Throws<ContextLengthExceededException>(() => Model.Generate(MiniGeminiPrompt.Ask("Compare them.", junk), Greedy));
        Assert.Contains("40 image(s)", many.Message);

        // A prompt just past the context after tokenizing is refused with its exact count, also before its image is read.
        var words = string.Join(" ", Enumerable.Repeat("picture", 600));
        var exact = Assert.Throws<ContextLengthExceededException>(() => Model.Generate(MiniGeminiPrompt.Ask(words, junk[0]), Greedy));
        Assert.Contains($"{Model.CountPromptTokens(MiniGeminiPrompt.Ask(words, junk[0]))} positions", exact.Message);
    }

    [Fact]
    public void Bad_requests_are_typed_errors()
    {
        Assert.Throws<ArgumentException>(() => Model.Generate(MiniGeminiPrompt.Ask("look: <image>"), Greedy));
        // An image slot typed anywhere else is refused too, naming where it stands.
        var inAnswer = Assert.Throws<ArgumentException>(() => Model.Generate(new MiniGeminiPrompt
            { Turns = [ChatTurn.User("a"), ChatTurn.Assistant("see <image>"), ChatTurn.User("b")] }, Greedy));
        Assert.Contains("Turn 1", inAnswer.Message);
        var inSystem = Assert.Throws<ArgumentException>(() => Model.Generate(MiniGeminiPrompt.Ask("a") with { SystemPrompt = "<image>" }, Greedy));
        Assert.Contains("system prompt", inSystem.Message);
        Assert.Throws<ArgumentException>(() => Model.Generate(new MiniGeminiPrompt { Turns = [ChatTurn.User("a"), ChatTurn.Assistant("b")] }, Greedy));
        Assert.Throws<ArgumentException>(() => Model.Generate(new MiniGeminiPrompt { Turns = [] }, Greedy));
        var e = Assert.Throws<InvalidImageException>(() => Model.Generate(MiniGeminiPrompt.Ask("?", ImageInput.FromBytes(new byte[] { 1, 2, 3 }, "junk.png")), Greedy));
        Assert.Contains("junk.png", e.Message);
        Assert.Throws<ContextLengthExceededException>(() => Model.Generate(MiniGeminiPrompt.Ask("Hi", Image), Greedy with { MaxNewTokens = 100_000 }));
        Assert.Throws<FileNotFoundException>(() => Model.Generate(MiniGeminiPrompt.Ask("Hi", ImageInput.FromFile("/no/such/image.png")), Greedy));
    }

    [Fact]
    public void A_budget_of_int_MaxValue_new_tokens_is_refused_as_too_long()
    {
        var e = Assert.Throws<ContextLengthExceededException>(() => Model.Generate(MiniGeminiPrompt.Ask("Hi", Image), Greedy with { MaxNewTokens = int.MaxValue }));
        Assert.Contains($"{int.MaxValue} new tokens", e.Message);
        Assert.Equal(Model.ContextLength, e.Limit);
    }

    [Fact]
    public void Splicing_more_images_than_slots_or_more_slots_than_images_is_refused()
    {
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        using var features = Model.Module.Encode(Model.Processor.PreprocessImages([Image]));
        var twoSlots = Model.Processor.Tokenize(MiniGeminiPrompt.Ask("Compare them.", Image, Image));
        var tooFew = Assert.Throws<ArgumentException>(() => Model.Module.Splice(twoSlots, features.Tokens));
        Assert.Contains("more image slots than images (1)", tooFew.Message);
        var noSlot = Model.Processor.Tokenize(MiniGeminiPrompt.Ask("No picture here."));
        var tooMany = Assert.Throws<ArgumentException>(() => Model.Module.Splice(noSlot, features.Tokens));
        Assert.Contains("0 image slots but 1 images", tooMany.Message);
        Assert.Throws<ArgumentException>(() => Model.Module.Splice(twoSlots, null));
    }

    [Fact]
    public void Generation_does_not_leak_native_tensors()
    {
        var prompt = MiniGeminiPrompt.Ask("Describe.", Image);
        Model.Generate(prompt, Greedy); // warm-up (lazy buffers)
        var stats = TorchSharp.DisposeScopeManager.Statistics;
        stats.Reset();
        for (int i = 0; i < 3; i++) Model.Generate(prompt, Greedy);
        Assert.Equal(0, stats.ThreadTotalLiveCount);
    }

    [Fact]
    public void A_thousand_generate_calls_leave_no_native_tensors_and_no_memory_growth()
    {
        var prompts = new[] { MiniGeminiPrompt.Ask("Describe.", Image), MiniGeminiPrompt.Ask("Hi") };
        var options = Greedy with { MaxNewTokens = 2 };
        for (int i = 0; i < 100; i++) Model.Generate(prompts[i % 2], options); // warm-up: allocator caches settle
        long Rss()
        {
            GC.Collect();
            GC.WaitForPendingFinalizers();
            using var self = System.Diagnostics.Process.GetCurrentProcess();
            self.Refresh();
            return self.WorkingSet64;
        }
        long baseline = Rss();
        var stats = TorchSharp.DisposeScopeManager.Statistics;
        stats.Reset();
        for (int i = 0; i < 1000; i++) Model.Generate(prompts[i % 2], options);
        Assert.Equal(0, stats.ThreadTotalLiveCount);
        long growth = Rss() - baseline;
        // One leaked image's features per call would be ≥ 1000 × 16 tokens × 4 bytes × width; allow allocator noise only.
        Assert.True(growth < 48L << 20, $"RSS grew by {growth / (1 << 20)} MiB over 1000 calls");
    }
}
