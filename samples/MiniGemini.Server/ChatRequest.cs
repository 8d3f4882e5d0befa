using System.Text.Json;
using Microsoft.Extensions.AI;

namespace MiniGemini.Server;

/// <summary>A request the server refuses: HTTP 400 (or <see cref="Status"/>) with an OpenAI error naming the field.</summary>
public sealed class RequestException(string message, string? param, string? code = null, int status = StatusCodes.Status400BadRequest) : Exception(message)
{
    /// <summary>The request field at fault, e.g. <c>messages[1].content[0].image_url.url</c>.</summary>
    public string? Param { get; } = param;

    /// <summary>A machine-readable reason, e.g. <c>max_tokens_exceeded</c>.</summary>
    public string? Code { get; } = code;

    /// <summary>The HTTP status.</summary>
    public int Status { get; } = status;
}

/// <summary>
/// <c>POST /v1/chat/completions</c> read into Microsoft.Extensions.AI terms: messages with text and image parts, and
/// the sampling options. Fields are checked one by one, so that a refusal names the field.
/// </summary>
public sealed record ChatRequest(List<ChatMessage> Messages, ChatOptions Options, bool Stream, bool IncludeUsage)
{
    /// <summary>Reads and checks a request body.</summary>
    /// <exception cref="RequestException">A field is missing, of the wrong kind or out of range.</exception>
    public static ChatRequest Parse(JsonElement body, string modelName, ServerOptions server)
    {
        if (body.ValueKind != JsonValueKind.Object) throw new RequestException("The body must be a JSON object.", null);
        if (Optional(body, "model") is { } model && (model.ValueKind != JsonValueKind.String || model.GetString() != modelName))
            throw new RequestException($"The model '{model}' does not exist; this server serves '{modelName}'.", "model", "model_not_found", StatusCodes.Status404NotFound);
        if (Optional(body, "n") is { } n && (!n.TryGetInt32(out int count) || count != 1))
            throw new RequestException("Only n = 1 is supported.", "n");
        if (Optional(body, "tools") is { ValueKind: JsonValueKind.Array } tools && tools.GetArrayLength() > 0)
            throw new RequestException("Mini-Gemini cannot call tools.", "tools", "unsupported_parameter");

        var messages = ReadMessages(Optional(body, "messages") ?? throw new RequestException("'messages' is required.", "messages"), server);
        int maxTokens = (int)(Number(body, "max_completion_tokens", 1, server.MaxTokens, integer: true)
                              ?? Number(body, "max_tokens", 1, server.MaxTokens, integer: true) ?? server.MaxTokens);
        var options = new ChatOptions
        {
            MaxOutputTokens = maxTokens,
            Temperature = (float?)Number(body, "temperature", 0, 2),
            TopP = (float?)Number(body, "top_p", 0, 1),
            Seed = Number(body, "seed", long.MinValue, long.MaxValue, integer: true) is { } seed ? (long)seed : null,
            StopSequences = Stop(Optional(body, "stop")),
        };
        if (Optional(body, "generate_image") is { } draw)
        {
            if (draw.ValueKind is not (JsonValueKind.True or JsonValueKind.False)) throw new RequestException("'generate_image' must be true or false.", "generate_image");
            options.AdditionalProperties = new() { [MiniGemini.Hosting.MiniGeminiChatClient.GenerateImageProperty] = draw.GetBoolean() };
        }
        bool stream = Optional(body, "stream") is { ValueKind: JsonValueKind.True };
        bool includeUsage = Optional(body, "stream_options") is { ValueKind: JsonValueKind.Object } so &&
                            Optional(so, "include_usage") is { ValueKind: JsonValueKind.True };
        return new ChatRequest(messages, options, stream, includeUsage);
    }

    static List<ChatMessage> ReadMessages(JsonElement array, ServerOptions server)
    {
        if (array.ValueKind != JsonValueKind.Array || array.GetArrayLength() == 0)
            throw new RequestException("'messages' must be a non-empty array.", "messages");
        var messages = new List<ChatMessage>();
        int i = 0;
        foreach (var item in array.EnumerateArray())
        {
            string at = $"messages[{i++}]";
            if (item.ValueKind != JsonValueKind.Object) throw new RequestException($"{at} must be an object.", at);
            var role = Optional(item, "role") is { ValueKind: JsonValueKind.String } r ? r.GetString() : null;
            var chatRole = role switch
            {
                "system" or "developer" => ChatRole.System,
                "user" => ChatRole.User,
                "assistant" => ChatRole.Assistant,
                _ => throw new RequestException($"{at}.role '{role}' is not supported (system, user and assistant are).", at + ".role"),
            };
            messages.Add(new ChatMessage(chatRole, Contents(Optional(item, "content"), at + ".content", server)));
        }
        return messages;
    }

    static List<AIContent> Contents(JsonElement? content, string at, ServerOptions server)
    {
        if (content is null or { ValueKind: JsonValueKind.Null }) return [];
        if (content.Value.ValueKind == JsonValueKind.String) return [new TextContent(content.Value.GetString())];
        if (content.Value.ValueKind != JsonValueKind.Array) throw new RequestException($"{at} must be a string or an array of parts.", at);
        var parts = new List<AIContent>();
        int i = 0;
        foreach (var part in content.Value.EnumerateArray())
        {
            string here = $"{at}[{i++}]";
            var type = part.ValueKind == JsonValueKind.Object && Optional(part, "type") is { ValueKind: JsonValueKind.String } t ? t.GetString() : null;
            switch (type)
            {
                case "text":
                    parts.Add(new TextContent(Optional(part, "text") is { ValueKind: JsonValueKind.String } text ? text.GetString()
                        : throw new RequestException($"{here}.text must be a string.", here + ".text")));
                    break;
                case "image_url":
                    var url = Optional(part, "image_url") is { ValueKind: JsonValueKind.Object } image && Optional(image, "url") is { ValueKind: JsonValueKind.String } u
                        ? u.GetString()! : throw new RequestException($"{here}.image_url.url must be a string.", here + ".image_url.url");
                    parts.Add(Image(url, here + ".image_url.url", server));
                    break;
                default:
                    throw new RequestException($"{here}.type '{type}' is not supported (text and image_url are).", here + ".type");
            }
        }
        return parts;
    }

    /// <summary>A data URI as it is; a <c>file:</c> URI or path read here, only inside <see cref="ServerOptions.LocalImageRoot"/>.</summary>
    static AIContent Image(string url, string at, ServerOptions server)
    {
        if (url.StartsWith("data:", StringComparison.OrdinalIgnoreCase))
        {
            try { return new DataContent(url); }
            catch (FormatException e) { throw new RequestException($"{at}: not a valid data URI ({e.Message}).", at); }
        }
        if (url.StartsWith("http://", StringComparison.OrdinalIgnoreCase) || url.StartsWith("https://", StringComparison.OrdinalIgnoreCase))
            throw new RequestException($"{at}: remote images are not fetched; send the image as a data URI.", at, "unsupported_image_url");
        string path = Uri.TryCreate(url, UriKind.Absolute, out var uri) && uri.IsFile ? uri.LocalPath : url;
        if (server.LocalImageRoot is null)
            throw new RequestException($"{at}: local files are not read by this server (Server:LocalImageRoot is not set); send the image as a data URI.", at, "unsupported_image_url");
        var root = Path.GetFullPath(server.LocalImageRoot).TrimEnd(Path.DirectorySeparatorChar) + Path.DirectorySeparatorChar;
        var full = Path.GetFullPath(path, root);
        if (!full.StartsWith(root, StringComparison.Ordinal))
            throw new RequestException($"{at}: '{url}' is outside the folder local images are read from.", at, "unsupported_image_url");
        if (!File.Exists(full)) throw new RequestException($"{at}: '{url}' does not exist under the local image folder.", at, "image_not_found");
        if (new FileInfo(full).Length > server.MaxRequestBytes)
            throw new RequestException($"{at}: '{url}' is larger than the request limit ({server.MaxRequestBytes:N0} bytes).", at, "image_too_large");
        var extension = Path.GetExtension(full).TrimStart('.').ToLowerInvariant();
        return new DataContent(File.ReadAllBytes(full), "image/" + (extension is "jpg" ? "jpeg" : extension.Length > 0 ? extension : "png")) { Name = full };
    }

    static IList<string>? Stop(JsonElement? stop) => stop switch
    {
        null or { ValueKind: JsonValueKind.Null } => null,
        { ValueKind: JsonValueKind.String } s => [s.GetString()!],
        { ValueKind: JsonValueKind.Array } a when a.GetArrayLength() <= 4 && a.EnumerateArray().All(e => e.ValueKind == JsonValueKind.String && e.GetString()!.Length > 0) =>
            a.EnumerateArray().Select(e => e.GetString()!).ToList(),
        _ => throw new RequestException("'stop' must be a string or an array of up to 4 non-empty strings.", "stop"),
    };

    static double? Number(JsonElement body, string name, double min, double max, bool integer = false)
    {
        if (Optional(body, name) is not { } value || value.ValueKind == JsonValueKind.Null) return null;
        if (value.ValueKind != JsonValueKind.Number || !value.TryGetDouble(out double number) || (integer && !value.TryGetInt64(out _)))
            throw new RequestException($"'{name}' must be {(integer ? "an integer" : "a number")}.", name);
        if (number < min || number > max)
            throw new RequestException($"'{name}' is {number}; it must be between {min} and {max}.", name, name is "max_tokens" or "max_completion_tokens" ? "max_tokens_exceeded" : null);
        return number;
    }

    static JsonElement? Optional(JsonElement element, string name) => element.TryGetProperty(name, out var value) ? value : null;
}
