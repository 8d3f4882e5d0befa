using System.Text.Json.Serialization;

namespace MiniGemini.Server;

// The OpenAI wire shapes the server writes (requests are read from JSON directly: their fields are unions).

/// <summary>An OpenAI error body: <c>{"error": {"message", "type", "param", "code"}}</c>.</summary>
public sealed record ApiError([property: JsonPropertyName("error")] ApiErrorDetail Error)
{
    /// <summary>An error of the given type and code, naming the request field at fault.</summary>
    public static ApiError Of(string message, string type = "invalid_request_error", string? param = null, string? code = null) =>
        new(new ApiErrorDetail(message, type, param, code));
}

/// <summary>The inside of <see cref="ApiError"/>.</summary>
public sealed record ApiErrorDetail(
    [property: JsonPropertyName("message")] string Message,
    [property: JsonPropertyName("type")] string Type,
    [property: JsonPropertyName("param")] string? Param,
    [property: JsonPropertyName("code")] string? Code);

/// <summary><c>GET /v1/models</c>.</summary>
public sealed record ModelList([property: JsonPropertyName("data")] IReadOnlyList<ModelCard> Data)
{
    /// <summary>Always <c>list</c>.</summary>
    [JsonPropertyName("object")] public string Object => "list";
}

/// <summary>One model of <see cref="ModelList"/>.</summary>
public sealed record ModelCard(
    [property: JsonPropertyName("id")] string Id,
    [property: JsonPropertyName("created")] long Created,
    [property: JsonPropertyName("owned_by")] string OwnedBy)
{
    /// <summary>Always <c>model</c>.</summary>
    [JsonPropertyName("object")] public string Object => "model";
}

/// <summary>A chat completion, or one chunk of a streamed one.</summary>
public sealed record ChatCompletion(
    [property: JsonPropertyName("id")] string Id,
    [property: JsonPropertyName("object")] string Object,
    [property: JsonPropertyName("created")] long Created,
    [property: JsonPropertyName("model")] string Model,
    [property: JsonPropertyName("choices")] IReadOnlyList<ChatChoice> Choices,
    [property: JsonPropertyName("usage"), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] ChatUsage? Usage);

/// <summary>A choice: <c>message</c> in a completion, <c>delta</c> in a chunk.</summary>
public sealed record ChatChoice(
    [property: JsonPropertyName("index")] int Index,
    [property: JsonPropertyName("message"), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] ChatMessageBody? Message,
    [property: JsonPropertyName("delta"), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] ChatMessageBody? Delta,
    [property: JsonPropertyName("finish_reason")] string? FinishReason);

/// <summary>
/// The assistant's message. <c>images</c> is this server's addition: the pictures rendered from a draw request's
/// caption (base64 PNG), when an image generator is configured.
/// </summary>
public sealed record ChatMessageBody(
    [property: JsonPropertyName("role"), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? Role,
    [property: JsonPropertyName("content"), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? Content,
    [property: JsonPropertyName("images"), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] IReadOnlyList<ImageData>? Images = null);

/// <summary>Token counts; <c>prompt_tokens_details.cached_tokens</c> are prompt positions reused from an earlier turn.</summary>
public sealed record ChatUsage(
    [property: JsonPropertyName("prompt_tokens")] long PromptTokens,
    [property: JsonPropertyName("completion_tokens")] long CompletionTokens,
    [property: JsonPropertyName("total_tokens")] long TotalTokens,
    [property: JsonPropertyName("prompt_tokens_details")] PromptTokenDetails PromptTokensDetails);

/// <summary>Details of the prompt's tokens.</summary>
public sealed record PromptTokenDetails([property: JsonPropertyName("cached_tokens")] long CachedTokens);

/// <summary><c>POST /v1/images/generations</c>' answer.</summary>
public sealed record ImageList(
    [property: JsonPropertyName("created")] long Created,
    [property: JsonPropertyName("data")] IReadOnlyList<ImageData> Data);

/// <summary>One picture as base64.</summary>
public sealed record ImageData(
    [property: JsonPropertyName("b64_json")] string B64Json,
    [property: JsonPropertyName("media_type")] string MediaType);
