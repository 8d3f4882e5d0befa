using System.Text.Json;
using Microsoft.Extensions.AI;
using Microsoft.Extensions.Options;
using MiniGemini.Modeling;

namespace MiniGemini.Server;

/// <summary><c>POST /v1/chat/completions</c>: a completion, or server-sent events when <c>stream</c> is true.</summary>
public static class ChatCompletions
{
    /// <summary>Answers one request; requests wait their turn on the model in arrival order and stop when the client goes away.</summary>
    public static async Task Handle(HttpContext http, IChatClient client, MiniGeminiModel model, IOptions<ServerOptions> options, ILogger<ServerOptions> logger)
    {
        var server = options.Value;
        var cancellation = http.RequestAborted;
        await Api.Run(http, logger, async started =>
        {
            using var body = await Api.ReadJson(http, server.MaxRequestBytes);
            var request = ChatRequest.Parse(body.RootElement, model.Name, server);
            string id = "chatcmpl-" + Guid.NewGuid().ToString("N");
            long created = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
            if (!request.Stream)
            {
                var response = await client.GetResponseAsync(request.Messages, request.Options, cancellation);
                var message = new ChatMessageBody("assistant", response.Text, Images(response.Messages.SelectMany(m => m.Contents)));
                await http.Response.WriteAsJsonAsync(new ChatCompletion(id, "chat.completion", created, model.Name,
                    [new ChatChoice(0, message, null, FinishReason(response.FinishReason))], Usage(response.Usage)), cancellation);
                return;
            }

            http.Response.ContentType = "text/event-stream";
            http.Response.Headers.CacheControl = "no-cache";
            started();
            await Api.Event(http, new ChatCompletion(id, "chat.completion.chunk", created, model.Name, [new ChatChoice(0, null, new ChatMessageBody("assistant", ""), null)], null));
            UsageDetails? usage = null;
            await foreach (var update in client.GetStreamingResponseAsync(request.Messages, request.Options, cancellation))
            {
                usage = update.Contents.OfType<UsageContent>().FirstOrDefault()?.Details ?? usage;
                var images = Images(update.Contents);
                if (update.Text.Length > 0 || images is not null || update.FinishReason is not null)
                    await Api.Event(http, new ChatCompletion(id, "chat.completion.chunk", created, model.Name,
                        [new ChatChoice(0, null, new ChatMessageBody(null, update.Text.Length > 0 ? update.Text : null, images), FinishReason(update.FinishReason))], null));
            }
            if (request.IncludeUsage) await Api.Event(http, new ChatCompletion(id, "chat.completion.chunk", created, model.Name, [], Usage(usage)));
            await Api.Done(http);
        });
    }

    static string? FinishReason(ChatFinishReason? reason) => reason is null ? null : reason == ChatFinishReason.Length ? "length" : "stop";

    static ChatUsage? Usage(UsageDetails? usage) => usage is null ? null : new ChatUsage(usage.InputTokenCount ?? 0, usage.OutputTokenCount ?? 0,
        usage.TotalTokenCount ?? 0, new PromptTokenDetails(usage.CachedInputTokenCount ?? 0));

    static List<ImageData>? Images(IEnumerable<AIContent> contents)
    {
        var images = contents.OfType<DataContent>().Where(d => d.HasTopLevelMediaType("image"))
            .Select(d => new ImageData(Convert.ToBase64String(d.Data.Span), d.MediaType)).ToList();
        return images.Count == 0 ? null : images;
    }
}

/// <summary><c>POST /v1/images/generations</c>: a picture from a prompt through the registered <see cref="IImageGenerator"/>.</summary>
public static class ImageGenerations
{
#pragma warning disable MEAI001 // IImageGenerator is experimental upstream
    /// <summary>Draws one picture (<c>n</c> = 1, <c>response_format</c> <c>b64_json</c>).</summary>
    public static async Task Handle(HttpContext http, IServiceProvider services, IOptions<ServerOptions> options, ILogger<ServerOptions> logger)
    {
        var server = options.Value;
        await Api.Run(http, logger, async _ =>
        {
            using var body = await Api.ReadJson(http, server.MaxRequestBytes);
            var root = body.RootElement;
            var prompt = root.ValueKind == JsonValueKind.Object && root.TryGetProperty("prompt", out var p) && p.ValueKind == JsonValueKind.String && p.GetString()!.Trim().Length > 0
                ? p.GetString()! : throw new RequestException("'prompt' is required and must be a non-empty string.", "prompt");
            if (root.TryGetProperty("n", out var n) && (!n.TryGetInt32(out int count) || count != 1)) throw new RequestException("Only n = 1 is supported.", "n");
            if (root.TryGetProperty("response_format", out var format) && format.GetString() != "b64_json")
                throw new RequestException("Only response_format 'b64_json' is supported.", "response_format");
            var generation = new ImageGenerationOptions { Count = 1 };
            if (root.TryGetProperty("size", out var size))
            {
                var parts = (size.ValueKind == JsonValueKind.String ? size.GetString()! : "").Split('x');
                if (parts.Length != 2 || !int.TryParse(parts[0], out int w) || !int.TryParse(parts[1], out int h) || w < 1 || h < 1 || w > 4096 || h > 4096)
                    throw new RequestException($"'size' must be WIDTHxHEIGHT with sides from 1 to 4096, e.g. '448x448'.", "size");
                generation.ImageSize = new System.Drawing.Size(w, h);
            }
            var generator = services.GetService<IImageGenerator>()
                ?? throw new RequestException("This server has no image generator (Server:ImageGenerator is 'none').", null, "image_generation_unavailable", StatusCodes.Status501NotImplemented);
            var response = await generator.GenerateAsync(new ImageGenerationRequest(prompt), generation, http.RequestAborted);
            var images = response.Contents.OfType<DataContent>().Select(d => new ImageData(Convert.ToBase64String(d.Data.Span), d.MediaType)).ToList();
            await http.Response.WriteAsJsonAsync(new ImageList(DateTimeOffset.UtcNow.ToUnixTimeSeconds(), images), http.RequestAborted);
        });
    }
#pragma warning restore MEAI001
}

/// <summary>What every endpoint shares: the bounded body, OpenAI error objects, server-sent events.</summary>
static class Api
{
    static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web) { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    /// <summary>
    /// Runs an endpoint, turning refusals and the model's typed errors into OpenAI error objects: as the response when
    /// nothing was sent yet, as a last event once a stream has started (<paramref name="work"/> calls its argument then).
    /// A request whose client went away just ends.
    /// </summary>
    public static async Task Run(HttpContext http, ILogger logger, Func<Action, Task> work)
    {
        bool streaming = false;
        try
        {
            await work(() => streaming = true);
        }
        catch (OperationCanceledException) when (http.RequestAborted.IsCancellationRequested)
        {
            // the client disconnected: generation stopped between tokens, nothing to answer
        }
        catch (Exception e) when (Classify(e) is var (status, error))
        {
            if (status >= 500) logger.LogError(e, "Request failed");
            if (streaming)
            {
                await Event(http, error);
                await Done(http);
            }
            else
            {
                http.Response.StatusCode = status;
                await http.Response.WriteAsJsonAsync(error, Json);
            }
        }
    }

    static (int Status, ApiError Error) Classify(Exception e) => e switch
    {
        RequestException r => (r.Status, ApiError.Of(r.Message, r.Status == StatusCodes.Status501NotImplemented ? "server_error" : "invalid_request_error", r.Param, r.Code)),
        InvalidImageException { Reason: InvalidImageReason.TooLarge } => (400, ApiError.Of(e.Message, param: "messages", code: "image_too_large")),
        InvalidImageException => (400, ApiError.Of(e.Message, param: "messages", code: "invalid_image")),
        ContextLengthExceededException => (400, ApiError.Of(e.Message, param: "messages", code: "context_length_exceeded")),
        NotSupportedException or ArgumentException or UnauthorizedAccessException => (400, ApiError.Of(e.Message)),
        ImageGenerationException => (502, ApiError.Of(e.Message, "server_error", code: "image_generation_failed")),
        _ => (500, ApiError.Of("The server failed to answer: " + e.Message, "server_error")),
    };

    /// <summary>The body as JSON, read up to <paramref name="limit"/> bytes (HTTP 413 beyond).</summary>
    public static async Task<JsonDocument> ReadJson(HttpContext http, long limit)
    {
        static RequestException TooLarge(long limit) =>
            new($"The request body is larger than this server accepts ({limit:N0} bytes).", null, "request_too_large", StatusCodes.Status413PayloadTooLarge);
        if (http.Request.ContentLength > limit) throw TooLarge(limit);
        using var buffer = new MemoryStream();
        var chunk = new byte[81920];
        int read;
        while ((read = await http.Request.Body.ReadAsync(chunk, http.RequestAborted)) > 0)
        {
            if (buffer.Length + read > limit) throw TooLarge(limit);
            buffer.Write(chunk, 0, read);
        }
        try
        {
            return JsonDocument.Parse(buffer.GetBuffer().AsMemory(0, (int)buffer.Length));
        }
        catch (JsonException e)
        {
            throw new RequestException($"The body is not valid JSON: {e.Message}", null, "invalid_json");
        }
    }

    /// <summary>One server-sent event with a JSON payload, flushed.</summary>
    public static async Task Event<T>(HttpContext http, T payload)
    {
        await http.Response.WriteAsync("data: " + JsonSerializer.Serialize(payload, Json) + "\n\n", http.RequestAborted);
        await http.Response.Body.FlushAsync(http.RequestAborted);
    }

    /// <summary>The end of an OpenAI stream.</summary>
    public static async Task Done(HttpContext http)
    {
        await http.Response.WriteAsync("data: [DONE]\n\n", http.RequestAborted);
        await http.Response.Body.FlushAsync(http.RequestAborted);
    }
}
