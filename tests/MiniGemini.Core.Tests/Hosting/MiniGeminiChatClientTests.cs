using Microsoft.Extensions.AI;
using MiniGemini.Generation;
using MiniGemini.Hosting;
using MiniGemini.Tests.Pipeline;
using Xunit;

namespace MiniGemini.Tests.Hosting;

[Collection(TinyModelCollection.Name)]
public sealed class MiniGeminiChatClientTests(TinyModelFixture tiny)
{
    static byte[] ImageBytes => File.ReadAllBytes(TinyModelFixture.ImagePath);

    static ChatOptions Options(int tokens = 10) => new() { MaxOutputTokens = tokens, Temperature = 0 };

    MiniGeminiResponse Direct(string text, bool withImage, int tokens = 10) => tiny.Model.Generate(
        withImage ? MiniGeminiPrompt.Ask(text, ImageInput.FromBytes(ImageBytes)) : MiniGeminiPrompt.Ask(text),
        new GenerationOptions { MaxNewTokens = tokens });

    [Fact]
    public async Task Image_from_DataContent_bytes_gives_the_models_answer_with_usage()
    {
        using var client = new MiniGeminiChatClient(tiny.Model);
        var message = new ChatMessage(ChatRole.User, [new DataContent(ImageBytes, "image/png"), new TextContent("Describe the picture.")]);
        var response = await client.GetResponseAsync([message], Options());
        var direct = Direct("Describe the picture.", withImage: true);
        Assert.Equal(direct.Text, response.Text);
        Assert.Equal(direct.PromptTokens, response.Usage!.InputTokenCount);
        Assert.Equal(direct.CompletionTokens, response.Usage.OutputTokenCount);
        Assert.Equal(direct.FinishReason == FinishReason.Length ? ChatFinishReason.Length : ChatFinishReason.Stop, response.FinishReason);
        Assert.Equal(tiny.Model.Name, response.ModelId);
    }

    [Fact]
    public async Task Data_uri_images_are_accepted_file_uris_only_inside_the_allowed_folder_and_remote_uris_refused()
    {
        using var client = new MiniGeminiChatClient(tiny.Model);
        var dataUri = "data:image/png;base64," + Convert.ToBase64String(ImageBytes);
        var a = await client.GetResponseAsync([new ChatMessage(ChatRole.User, [new DataContent(dataUri), new TextContent("Describe the picture.")])], Options());
        Assert.Equal(Direct("Describe the picture.", withImage: true).Text, a.Text);
        await Assert.ThrowsAsync<NotSupportedException>(() => client.GetResponseAsync(
            [new ChatMessage(ChatRole.User, [new UriContent(new Uri("https://example.com/cat.png"), "image/png"), new TextContent("?")])], Options()));

        ChatMessage Asking(string path) => new(ChatRole.User, [new UriContent(new Uri(path), "image/png"), new TextContent("Describe the picture.")]);
        // By default no file URI is read, whether or not the file exists: the message is the same.
        var existing = await Assert.ThrowsAsync<UnauthorizedAccessException>(() => client.GetResponseAsync([Asking(TinyModelFixture.ImagePath)], Options()));
        var missing = await Assert.ThrowsAsync<UnauthorizedAccessException>(() => client.GetResponseAsync([Asking("/root/.ssh/id_rsa")], Options()));
        Assert.Equal(existing.Message.Replace(TinyModelFixture.ImagePath, "X"), missing.Message.Replace("/root/.ssh/id_rsa", "X"));

        // With an allowed folder: files inside are read, paths outside are refused before being looked at.
        using var allowed = new MiniGeminiChatClient(tiny.Model) { LocalImageRoot = Path.GetDirectoryName(TinyModelFixture.ImagePath) };
        var b = await allowed.GetResponseAsync([Asking(TinyModelFixture.ImagePath)], Options());
        Assert.Equal(a.Text, b.Text);
        await Assert.ThrowsAsync<UnauthorizedAccessException>(() => allowed.GetResponseAsync([Asking("/dev/zero")], Options()));
        var escape = Path.Combine(Path.GetDirectoryName(TinyModelFixture.ImagePath)!, "..", "..", "etc", "passwd");
        await Assert.ThrowsAsync<UnauthorizedAccessException>(() => allowed.GetResponseAsync([Asking(Path.GetFullPath(escape))], Options()));
    }

    [Fact]
    public async Task A_link_inside_the_allowed_folder_to_a_file_outside_it_and_non_image_data_are_refused()
    {
        var root = Directory.CreateTempSubdirectory("mgm-chat-root-").FullName;
        try
        {
            var link = Path.Combine(root, "innocent.png");
            File.CreateSymbolicLink(link, TinyModelFixture.ImagePath); // the target exists, outside the folder
            using var client = new MiniGeminiChatClient(tiny.Model) { LocalImageRoot = root };
            var escape = await Assert.ThrowsAsync<UnauthorizedAccessException>(() => client.GetResponseAsync(
                [new ChatMessage(ChatRole.User, [new UriContent(new Uri(link), "image/png"), new TextContent("Describe the picture.")])], Options()));
            Assert.Contains("innocent.png", escape.Message);
            Assert.Contains("outside", escape.Message);

            var audio = await Assert.ThrowsAsync<NotSupportedException>(() => client.GetResponseAsync(
                [new ChatMessage(ChatRole.User, [new DataContent(new byte[] { 1, 2, 3 }, "audio/wav"), new TextContent("Transcribe.")])], Options()));
            Assert.Contains("audio/wav", audio.Message);
        }
        finally
        {
            Directory.Delete(root, recursive: true);
        }
    }

    [Fact]
    public async Task Streaming_concatenates_to_the_full_answer_and_ends_with_usage()
    {
        using var client = new MiniGeminiChatClient(tiny.Model);
        var updates = new List<ChatResponseUpdate>();
        await foreach (var u in client.GetStreamingResponseAsync([new ChatMessage(ChatRole.User, "Tell me a story.")], Options(14)))
            updates.Add(u);
        var direct = Direct("Tell me a story.", withImage: false, tokens: 14);
        Assert.Equal(direct.Text, string.Concat(updates.Select(u => u.Text)).Trim());
        Assert.NotNull(updates[^1].FinishReason);
        var usage = updates.SelectMany(u => u.Contents).OfType<UsageContent>().Single();
        Assert.Equal(direct.CompletionTokens, usage.Details.OutputTokenCount);
        Assert.Single(updates.Select(u => u.ResponseId).Distinct());
    }

    [Fact]
    public async Task Sixteen_concurrent_callers_through_the_chat_client_and_the_model_get_the_serial_answers()
    {
        using var client = new MiniGeminiChatClient(tiny.Model);
        var questions = Enumerable.Range(0, 16).Select(i => $"Question number {i}: what do you see?").ToArray();
        List<ChatMessage> Messages(int i) => i % 2 == 0
            ? [new ChatMessage(ChatRole.User, [new DataContent(ImageBytes, "image/png"), new TextContent(questions[i])])]
            : [new ChatMessage(ChatRole.User, questions[i])];
        MiniGeminiPrompt Prompt(int i) => i % 2 == 0
            ? MiniGeminiPrompt.Ask(questions[i], ImageInput.FromBytes(ImageBytes))
            : MiniGeminiPrompt.Ask(questions[i]);
        var greedy = new GenerationOptions { MaxNewTokens = 8 };

        var serialChat = new List<string>();
        var serialModel = new List<string>();
        for (int i = 0; i < 16; i++)
        {
            serialChat.Add((await client.GetResponseAsync(Messages(i), Options(8))).Text);
            serialModel.Add(tiny.Model.Generate(Prompt(i), greedy).Text);
        }
        // Half the callers go through IChatClient, half call the model itself, all at once.
        var chat = Enumerable.Range(0, 16).Select(i => Task.Run(async () => (await client.GetResponseAsync(Messages(i), Options(8))).Text));
        var direct = Enumerable.Range(0, 16).Select(i => Task.Run(async () => (await tiny.Model.GenerateAsync(Prompt(i), greedy)).Text));
        var all = await Task.WhenAll(chat.Concat(direct));
        Assert.Equal(serialChat, all.Take(16));
        Assert.Equal(serialModel, all.Skip(16));
    }

    [Fact]
    public async Task Options_are_mapped_and_not_modified()
    {
        using var client = new MiniGeminiChatClient(tiny.Model);
        var options = new ChatOptions { MaxOutputTokens = 6, Temperature = 0.8f, TopP = 0.9f, TopK = 20, Seed = 7, StopSequences = ["zzz"] };
        var first = await client.GetResponseAsync([new ChatMessage(ChatRole.User, "Hi")], options);
        var second = await client.GetResponseAsync([new ChatMessage(ChatRole.User, "Hi")], options);
        Assert.Equal(first.Text, second.Text); // same seed → same sample
        Assert.Equal(["zzz"], options.StopSequences);
        Assert.True(first.Usage!.OutputTokenCount <= 6);
        var (_, mapped) = MiniGeminiChatClient.Translate([new ChatMessage(ChatRole.User, "Hi")], options, client);
        Assert.Equal(0.8, mapped!.Temperature, 5);
        Assert.Equal(0.9, mapped.TopP, 5);
        Assert.Equal(20, mapped.TopK);
        Assert.Equal(7, mapped.Seed);
        Assert.Equal(6, mapped.MaxNewTokens);
        Assert.Equal(["zzz"], mapped.StopStrings);
    }

    [Fact]
    public async Task Required_tools_and_json_output_are_refused_and_optional_tools_ignored()
    {
        using var client = tiny.Model.AsIChatClient();
        var tool = AIFunctionFactory.Create(() => "sunny", "weather");
        ChatMessage[] ask = [new(ChatRole.User, "Hi")];
        var any = await Assert.ThrowsAsync<NotSupportedException>(() =>
            client.GetResponseAsync(ask, new ChatOptions { Tools = [tool], ToolMode = ChatToolMode.RequireAny, MaxOutputTokens = 2 }));
        Assert.Contains("tool", any.Message);
        var specific = await Assert.ThrowsAsync<NotSupportedException>(() =>
            client.GetResponseAsync(ask, new ChatOptions { Tools = [tool], ToolMode = ChatToolMode.RequireSpecific("weather"), MaxOutputTokens = 2 }));
        Assert.Contains("'weather'", specific.Message);
        var json = await Assert.ThrowsAsync<NotSupportedException>(() =>
            client.GetResponseAsync(ask, new ChatOptions { ResponseFormat = ChatResponseFormat.Json, MaxOutputTokens = 2 }));
        Assert.Contains("JSON", json.Message);

        var auto = await client.GetResponseAsync(ask, new ChatOptions { Tools = [tool], ToolMode = ChatToolMode.Auto, MaxOutputTokens = 2, Temperature = 0 });
        Assert.Equal(Direct("Hi", withImage: false, tokens: 2).Text, auto.Text);
        Assert.IsType<MiniGeminiChatClient>(client);
    }

    [Fact]
    public void System_messages_and_turns_are_translated()
    {
        using var client = new MiniGeminiChatClient(tiny.Model);
        var (prompt, _) = MiniGeminiChatClient.Translate(
        [
            new ChatMessage(ChatRole.System, "Be brief."),
            new ChatMessage(ChatRole.User, "What is this?"),
            new ChatMessage(ChatRole.Assistant, "A plot."),
            new ChatMessage(ChatRole.User, "Of what?"),
        ], new ChatOptions { AdditionalProperties = new() { [MiniGeminiChatClient.GenerateImageProperty] = true } }, client);
        Assert.Equal("Be brief.", prompt.SystemPrompt);
        Assert.Equal(3, prompt.Turns.Count);
        Assert.Equal(TurnRole.Assistant, prompt.Turns[1].Role);
        Assert.True(prompt.GenerateImage);
        Assert.Throws<ArgumentException>(() => MiniGeminiChatClient.Translate([new ChatMessage(ChatRole.Assistant, "x")], null, client));
        Assert.Throws<NotSupportedException>(() => MiniGeminiChatClient.Translate([new ChatMessage(ChatRole.Tool, "x")], null, client));
    }

    [Fact]
    public void The_raw_representation_factory_gets_the_client_and_sets_the_rest()
    {
        using var client = new MiniGeminiChatClient(tiny.Model);
        IChatClient? seen = null;
        var options = new ChatOptions
        {
            MaxOutputTokens = 5,
            RawRepresentationFactory = c => { seen = c; return new GenerationOptions { RepetitionPenalty = 1.3 }; },
        };
        var (_, mapped) = MiniGeminiChatClient.Translate([new ChatMessage(ChatRole.User, "Hi")], options, client);
        Assert.Same(client, seen);
        Assert.Equal(1.3, mapped!.RepetitionPenalty, 6);
        Assert.Equal(5, mapped.MaxNewTokens);
    }

    [Fact]
    public void Metadata_and_services()
    {
        using var client = new MiniGeminiChatClient(tiny.Model, "tiny");
        var metadata = client.GetService<ChatClientMetadata>();
        Assert.Equal("tiny", metadata!.DefaultModelId);
        Assert.Same(tiny.Model, client.GetService<MiniGeminiModel>());
        Assert.Same(client, client.GetService<IChatClient>());
    }
}
