using System.ClientModel;
using System.ClientModel.Primitives;
using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Mvc.Testing;
using Microsoft.Extensions.DependencyInjection;
using MiniGemini.Tests.Cli;
using OpenAI.Chat;
using Xunit;

namespace MiniGemini.Tests.Server;

/// <summary>The OpenAI-style server sample on the bundled demo model, through WebApplicationFactory.</summary>
public sealed class ServerTests(WebApplicationFactory<Program> factory) : IClassFixture<WebApplicationFactory<Program>>
{
    const string Question = "What digit is at the top left?";
    static string ExamplePicture => Path.Combine(Path.GetDirectoryName(BundledModelTests.ModelFolder)!, "example.png");
    static string DataUri => "data:image/png;base64," + Convert.ToBase64String(File.ReadAllBytes(ExamplePicture));

    static JsonObject AskAboutThePicture(string question = Question) => new()
    {
        ["model"] = "detail-shapes-mgm",
        ["messages"] = new JsonArray(new JsonObject
        {
            ["role"] = "user",
            ["content"] = new JsonArray(
                new JsonObject { ["type"] = "image_url", ["image_url"] = new JsonObject { ["url"] = DataUri } },
                new JsonObject { ["type"] = "text", ["text"] = question }),
        }),
        ["temperature"] = 0,
        ["max_tokens"] = 40,
    };

    MiniGeminiModel Model => factory.Services.GetRequiredService<MiniGeminiModel>();

    string Direct(string question = Question) =>
        Model.Generate(MiniGeminiPrompt.Ask(question, ImageInput.FromFile(ExamplePicture)), new() { MaxNewTokens = 40 }).Text;

    static async Task<JsonNode> Json(HttpResponseMessage response) => JsonNode.Parse(await response.Content.ReadAsStringAsync())!;

    [Fact]
    public async Task Health_and_models_name_the_served_model()
    {
        using var http = factory.CreateClient();
        Assert.Equal("ok", (string?)(await http.GetFromJsonAsync<JsonNode>("/health"))!["status"]);
        var models = await http.GetFromJsonAsync<JsonNode>("/v1/models");
        Assert.Equal("list", (string?)models!["object"]);
        Assert.Equal("detail-shapes-mgm", (string?)models["data"]![0]!["id"]);
    }

    [Fact]
    public async Task A_completion_about_a_picture_is_the_models_answer_with_usage()
    {
        using var http = factory.CreateClient();
        using var response = await http.PostAsJsonAsync("/v1/chat/completions", AskAboutThePicture());
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var body = await Json(response);
        Assert.Equal("chat.completion", (string?)body["object"]);
        Assert.Equal(Direct(), (string?)body["choices"]![0]!["message"]!["content"]);
        Assert.Equal("stop", (string?)body["choices"]![0]!["finish_reason"]);
        var usage = body["usage"]!;
        Assert.Equal((int)usage["prompt_tokens"]! + (int)usage["completion_tokens"]!, (int)usage["total_tokens"]!);
        Assert.True((int)usage["prompt_tokens"]! > Model.ImageTokensPerImage);
    }

    [Fact]
    public async Task A_stream_sends_the_same_answer_as_events_then_usage_and_done()
    {
        using var http = factory.CreateClient();
        var request = AskAboutThePicture("Describe the image.");
        request["stream"] = true;
        request["stream_options"] = new JsonObject { ["include_usage"] = true };
        using var response = await http.PostAsJsonAsync("/v1/chat/completions", request);
        Assert.Equal("text/event-stream", response.Content.Headers.ContentType!.MediaType);
        var events = (await response.Content.ReadAsStringAsync()).Split("\n\n", StringSplitOptions.RemoveEmptyEntries)
            .Select(e => e.StartsWith("data: ", StringComparison.Ordinal) ? e["data: ".Length..] : throw new InvalidDataException(e)).ToList();
        Assert.Equal("[DONE]", events[^1]);
        var chunks = events[..^1].Select(e => JsonNode.Parse(e)!).ToList();
        Assert.All(chunks, c => Assert.Equal("chat.completion.chunk", (string?)c["object"]));
        var text = string.Concat(chunks.Where(c => c["choices"]!.AsArray().Count > 0).Select(c => (string?)c["choices"]![0]!["delta"]!["content"] ?? ""));
        Assert.Equal(Direct("Describe the image."), text.Trim());
        Assert.True(chunks.Count > 5, "the answer comes in pieces");
        Assert.NotNull(chunks[^1]["usage"]);
        var finish = chunks.Where(c => c["choices"]!.AsArray().Count > 0).Last()["choices"]![0]!["finish_reason"];
        Assert.Contains((string?)finish, new[] { "stop", "length" });
    }

    [Fact]
    public async Task A_draw_request_returns_the_caption_and_the_rendered_picture()
    {
        using var http = factory.CreateClient();
        var request = new JsonObject
        {
            ["messages"] = new JsonArray(new JsonObject { ["role"] = "user", ["content"] = "Draw a blue square with the digit 2 at the top right." }),
            ["generate_image"] = true,
            ["max_tokens"] = 40,
        };
        var body = await Json(await http.PostAsJsonAsync("/v1/chat/completions", request));
        var message = body["choices"]![0]!["message"]!;
        Assert.Contains("<h>", (string?)message["content"]);
        var png = Convert.FromBase64String((string)message["images"]![0]!["b64_json"]!);
        Assert.Equal([0x89, (byte)'P', (byte)'N', (byte)'G'], png[..4]);

        var images = await Json(await http.PostAsJsonAsync("/v1/images/generations", new JsonObject { ["prompt"] = "a red circle with the digit 4 at the top left", ["size"] = "448x448" }));
        Assert.Equal([0x89, (byte)'P', (byte)'N', (byte)'G'], Convert.FromBase64String((string)images["data"]![0]!["b64_json"]!)[..4]);
    }

    [Theory]
    [InlineData("""{"messages":[{"role":"user","content":"hi"}],"max_tokens":100000}""", 400, "max_tokens", "max_tokens_exceeded")]
    [InlineData("""{"messages":[]}""", 400, "messages", null)]
    [InlineData("""{"messages":[{"role":"tool","content":"x"}]}""", 400, "messages[0].role", null)]
    [InlineData("""{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}]}""", 404, "model", "model_not_found")]
    [InlineData("""{"messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"https://example.com/a.png"}}]}]}""", 400, "messages[0].content[0].image_url.url", "unsupported_image_url")]
    [InlineData("""{"messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"data:image/png;base64,AAAA"}},{"type":"text","text":"?"}]}]}""", 400, "messages", "invalid_image")]
    [InlineData("""{"messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAATiAAAE4gCAIAAABsEtFuAAAAAElFTkSuQmCC"}},{"type":"text","text":"?"}]}]}""", 400, "messages", "image_too_large")]
    [InlineData("""{"messages":[{"role":"user","content":"hi"}],"stop":[1]}""", 400, "stop", null)]
    [InlineData("""{"messages":""", 400, null, "invalid_json")]
    public async Task Bad_requests_get_OpenAI_error_objects_naming_the_field(string body, int status, string? param, string? code)
    {
        using var http = factory.CreateClient();
        using var response = await http.PostAsync("/v1/chat/completions", new StringContent(body, Encoding.UTF8, "application/json"));
        Assert.Equal(status, (int)response.StatusCode);
        var error = (await Json(response))["error"]!;
        Assert.False(string.IsNullOrWhiteSpace((string?)error["message"]));
        Assert.Equal(param, (string?)error["param"]);
        Assert.Equal(code, (string?)error["code"]);
    }

    [Fact]
    public async Task A_body_over_the_limit_is_refused_with_413_before_the_model_runs()
    {
        using var small = factory.WithWebHostBuilder(b => b.UseSetting("Server:MaxRequestBytes", "4096"));
        using var http = small.CreateClient();
        using var response = await http.PostAsJsonAsync("/v1/chat/completions", AskAboutThePicture());
        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, response.StatusCode);
        Assert.Equal("request_too_large", (string?)(await Json(response))["error"]!["code"]);
    }

    [Fact]
    public async Task Concurrent_requests_are_all_answered_as_alone_and_a_dropped_stream_frees_the_model()
    {
        using var http = factory.CreateClient();
        var expected = Direct();
        var answers = await Task.WhenAll(Enumerable.Range(0, 4).Select(async _ =>
            (string?)(await Json(await http.PostAsJsonAsync("/v1/chat/completions", AskAboutThePicture())))["choices"]![0]!["message"]!["content"]));
        Assert.All(answers, a => Assert.Equal(expected, a));

        // A client that goes away after the first event: its generation stops and the next request is answered.
        var stream = AskAboutThePicture("Describe the image.");
        stream["stream"] = true;
        stream["max_tokens"] = 200;
        using (var dropped = new CancellationTokenSource())
        {
            using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/chat/completions") { Content = JsonContent.Create(stream) };
            using var response = await http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, dropped.Token);
            using var reader = new StreamReader(await response.Content.ReadAsStreamAsync(dropped.Token));
            Assert.StartsWith("data: ", await reader.ReadLineAsync(dropped.Token));
            dropped.Cancel();
        }
        using var after = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        var next = await Json(await http.PostAsJsonAsync("/v1/chat/completions", AskAboutThePicture(), after.Token));
        Assert.Equal(expected, (string?)next["choices"]![0]!["message"]!["content"]);
    }

    [Fact]
    public async Task The_official_OpenAI_client_talks_to_the_server()
    {
        var client = new ChatClient("detail-shapes-mgm", new ApiKeyCredential("unused"), new OpenAI.OpenAIClientOptions
        {
            Endpoint = new Uri(factory.Server.BaseAddress, "/v1/"),
            Transport = new HttpClientPipelineTransport(factory.CreateClient()),
        });
        List<OpenAI.Chat.ChatMessage> messages =
        [
            new UserChatMessage(ChatMessageContentPart.CreateImagePart(BinaryData.FromBytes(await File.ReadAllBytesAsync(ExamplePicture)), "image/png"),
                ChatMessageContentPart.CreateTextPart(Question)),
        ];
        var options = new ChatCompletionOptions { Temperature = 0, MaxOutputTokenCount = 40 };
        ChatCompletion completion = await client.CompleteChatAsync(messages, options);
        Assert.Equal(Direct(), completion.Content[0].Text);
        Assert.Equal(OpenAI.Chat.ChatFinishReason.Stop, completion.FinishReason);
        Assert.True(completion.Usage.InputTokenCount > 0);

        var streamed = new StringBuilder();
        await foreach (var update in client.CompleteChatStreamingAsync(messages, options))
            foreach (var part in update.ContentUpdate) streamed.Append(part.Text);
        Assert.Equal(completion.Content[0].Text, streamed.ToString().Trim());
    }
}
