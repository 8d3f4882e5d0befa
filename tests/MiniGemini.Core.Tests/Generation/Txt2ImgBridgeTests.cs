using System.Text.Json;
using Microsoft.Extensions.AI;
using MiniGemini.Generation;
using Xunit;

namespace MiniGemini.Tests.Generation;

public sealed class Txt2ImgBridgeTests
{
    static readonly byte[] Png = [0x89, (byte)'P', (byte)'N', (byte)'G', 0x0D, 0x0A, 0x1A, 0x0A, 1, 2, 3];

    static string ImageAnswer(long seed = 42) =>
        JsonSerializer.Serialize(new { images = new[] { Convert.ToBase64String(Png) }, info = JsonSerializer.Serialize(new { seed }) });

    static Txt2ImgClient Client(LoopbackServer server, int retries = 2, double timeoutSeconds = 10) => new(new Txt2ImgClientOptions
    {
        BaseAddress = server.BaseAddress, MaxRetries = retries, RetryDelay = TimeSpan.FromMilliseconds(20),
        Timeout = TimeSpan.FromSeconds(timeoutSeconds),
    });

    [Theory]
    [InlineData("Sure. <h> a red fox in snow </h>", "a red fox in snow")]
    [InlineData("<h>first</h> and then <h>second</h>", "second")]
    [InlineData("<h>complete</h> trailing <h>unclosed", "complete")]
    [InlineData("no caption here", null)]
    [InlineData("only opening <h> never closed", null)]
    [InlineData("empty <h>  </h>", null)]
    [InlineData("closing first </h> then <h>", null)]
    [InlineData("<h>a</h>b</h>", "a")]
    [InlineData("stray </h> <h>b</h> tail </h>", "b")]
    public void Caption_is_the_last_complete_pair(string answer, string? expected) =>
        Assert.Equal(expected, ImageCaption.Extract(answer));

    [Fact]
    public async Task Sends_the_txt2img_json_and_decodes_the_image()
    {
        await using var server = new LoopbackServer((request, _) =>
            Task.FromResult((request.Url!.AbsolutePath == "/sdapi/v1/txt2img" ? 200 : 404, ImageAnswer(), (Dictionary<string, string>?)null)));
        using var client = Client(server);
        var image = await client.GenerateAsync(new Txt2ImgRequest { Prompt = "a cat", Width = 512, Height = 768, Steps = 12, Seed = 7 });

        Assert.Equal(Png, image.Data.ToArray());
        Assert.Equal("image/png", image.MediaType);
        Assert.Equal(42, image.Seed);
        using var sent = JsonDocument.Parse(Assert.Single(server.RequestBodies));
        var root = sent.RootElement;
        Assert.Equal("a cat", root.GetProperty("prompt").GetString());
        Assert.Equal(Txt2ImgRequest.MgmNegativePrompt, root.GetProperty("negative_prompt").GetString());
        Assert.Equal(512, root.GetProperty("width").GetInt32());
        Assert.Equal(768, root.GetProperty("height").GetInt32());
        Assert.Equal(12, root.GetProperty("steps").GetInt32());
        Assert.Equal(7, root.GetProperty("seed").GetInt64());
        Assert.Equal(5.0, root.GetProperty("cfg_scale").GetDouble());
    }

    [Fact]
    public async Task Transient_failures_are_retried()
    {
        int calls = 0;
        await using var server = new LoopbackServer((_, _) =>
            Task.FromResult(Interlocked.Increment(ref calls) < 3 ? (503, "busy", (Dictionary<string, string>?)null) : (200, ImageAnswer(), null)));
        using var client = Client(server, retries: 2);
        var image = await client.GenerateAsync(new Txt2ImgRequest { Prompt = "x" });
        Assert.Equal(3, calls);
        Assert.Equal(Png, image.Data.ToArray());
    }

    [Fact]
    public async Task Persistent_transient_failure_gives_up_with_a_typed_error()
    {
        int calls = 0;
        await using var server = new LoopbackServer((_, _) => { Interlocked.Increment(ref calls); return Task.FromResult((502, "bad gateway", (Dictionary<string, string>?)null)); });
        using var client = Client(server, retries: 1);
        var e = await Assert.ThrowsAsync<ImageGenerationException>(() => client.GenerateAsync(new Txt2ImgRequest { Prompt = "x" }));
        Assert.Equal(2, calls);
        Assert.Equal(System.Net.HttpStatusCode.BadGateway, e.StatusCode);
        Assert.Contains("2 attempts", e.Message);
    }

    [Fact]
    public async Task Client_errors_are_not_retried()
    {
        int calls = 0;
        await using var server = new LoopbackServer((_, _) => { Interlocked.Increment(ref calls); return Task.FromResult((422, "{\"detail\":\"bad steps\"}", (Dictionary<string, string>?)null)); });
        using var client = Client(server);
        var e = await Assert.ThrowsAsync<ImageGenerationException>(() => client.GenerateAsync(new Txt2ImgRequest { Prompt = "x" }));
        Assert.Equal(1, calls);
        Assert.Contains("bad steps", e.Message);
        Assert.Equal((System.Net.HttpStatusCode)422, e.StatusCode);
    }

    [Fact]
    public async Task A_slow_server_times_out_per_attempt()
    {
        int calls = 0;
        await using var server = new LoopbackServer(async (_, _) =>
        {
            Interlocked.Increment(ref calls);
            await Task.Delay(2000);
            return (200, ImageAnswer(), null);
        });
        using var client = Client(server, retries: 1, timeoutSeconds: 0.2);
        var e = await Assert.ThrowsAsync<ImageGenerationException>(() => client.GenerateAsync(new Txt2ImgRequest { Prompt = "x" }));
        Assert.Contains("did not answer", e.Message);
        // Counted by the client: the second request may time out before the busy server's handler sees it.
        Assert.Contains("Gave up after 2 attempts", e.Message);
        Assert.InRange(calls, 1, 2);
    }

    [Fact]
    public async Task Caller_cancellation_is_not_a_generation_error()
    {
        await using var server = new LoopbackServer(async (_, _) =>
        {
            await Task.Delay(2000);
            return (200, ImageAnswer(), null);
        });
        using var client = Client(server);
        using var cts = new CancellationTokenSource(TimeSpan.FromMilliseconds(100));
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => client.GenerateAsync(new Txt2ImgRequest { Prompt = "x" }, cts.Token));
    }

    [Theory]
    [InlineData("not json")]
    [InlineData("{\"images\": []}")]
    [InlineData("{\"images\": [\"%%%\"]}")]
    public async Task Malformed_answers_are_typed_errors(string answer)
    {
        await using var server = new LoopbackServer((_, _) => Task.FromResult((200, answer, (Dictionary<string, string>?)null)));
        using var client = Client(server);
        await Assert.ThrowsAsync<ImageGenerationException>(() => client.GenerateAsync(new Txt2ImgRequest { Prompt = "x" }));
    }

    [Fact]
    public async Task Bridge_renders_the_answer_caption_and_skips_answers_without_one()
    {
        await using var server = new LoopbackServer((_, _) => Task.FromResult((200, ImageAnswer(), (Dictionary<string, string>?)null)));
        using var client = Client(server);
        var bridge = new Txt2ImgBridge(client, new Txt2ImgRequest { Prompt = "-", Steps = 8 });

        Assert.Null(await bridge.GenerateFromAnswerAsync("I can't draw that."));
        Assert.Empty(server.RequestBodies);

        var image = await bridge.GenerateFromAnswerAsync("Here you go. <h> young boy mimicking a phone call, white background </h>");
        Assert.NotNull(image);
        using var sent = JsonDocument.Parse(Assert.Single(server.RequestBodies));
        Assert.Equal("young boy mimicking a phone call, white background", sent.RootElement.GetProperty("prompt").GetString());
        Assert.Equal(8, sent.RootElement.GetProperty("steps").GetInt32());
    }

#pragma warning disable MEAI001 // the IImageGenerator path is experimental upstream
    sealed class FakeGenerator : IImageGenerator
    {
        public ImageGenerationRequest? Request;
        public ImageGenerationOptions? Options;

        public Task<ImageGenerationResponse> GenerateAsync(ImageGenerationRequest request, ImageGenerationOptions? options = null, CancellationToken cancellationToken = default)
        {
            Request = request;
            Options = options;
            return Task.FromResult(new ImageGenerationResponse([new DataContent(Png, "image/png")]));
        }

        public object? GetService(Type serviceType, object? serviceKey = null) => null;

        public void Dispose() { }
    }

    [Fact]
    public async Task Bridge_over_an_IImageGenerator_maps_the_request()
    {
        var fake = new FakeGenerator();
        var bridge = new Txt2ImgBridge(fake, new Txt2ImgRequest { Prompt = "-", Width = 640, Height = 480, Seed = 3 });
        var image = await bridge.GenerateAsync("a lighthouse");
        Assert.Equal(Png, image.Data.ToArray());
        Assert.Equal("a lighthouse", fake.Request!.Prompt);
        Assert.Equal(new System.Drawing.Size(640, 480), fake.Options!.ImageSize);
        Assert.Equal(Txt2ImgRequest.MgmNegativePrompt, fake.Options.AdditionalProperties!["negative_prompt"]);
        Assert.Equal(3L, fake.Options.AdditionalProperties["seed"]);
    }

    [Fact]
    public async Task The_txt2img_client_is_an_IImageGenerator_mapping_size_count_and_extra_settings()
    {
        await using var server = new LoopbackServer((_, _) => Task.FromResult((200, ImageAnswer(), (Dictionary<string, string>?)null)));
        using var client = Client(server);
        IImageGenerator generator = client;
        var response = await generator.GenerateAsync(new ImageGenerationRequest("a lighthouse"), new ImageGenerationOptions
        {
            Count = 2,
            ImageSize = new System.Drawing.Size(512, 384),
            AdditionalProperties = new AdditionalPropertiesDictionary { ["steps"] = 12, ["seed"] = 7L, ["negative_prompt"] = "fog" },
        });

        Assert.Equal(2, response.Contents.OfType<DataContent>().Count(c => c.HasTopLevelMediaType("image")));
        Assert.Equal(2, server.RequestBodies.Count);
        using var sent = JsonDocument.Parse(server.RequestBodies[0]);
        var body = sent.RootElement;
        Assert.Equal(("a lighthouse", "fog", 512, 384, 12, 7L),
            (body.GetProperty("prompt").GetString(), body.GetProperty("negative_prompt").GetString(), body.GetProperty("width").GetInt32(),
             body.GetProperty("height").GetInt32(), body.GetProperty("steps").GetInt32(), body.GetProperty("seed").GetInt64()));
        Assert.Same(client, generator.GetService(typeof(Txt2ImgClient)));
    }
#pragma warning restore MEAI001
}
