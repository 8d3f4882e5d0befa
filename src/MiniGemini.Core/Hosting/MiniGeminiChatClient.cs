using System.Runtime.CompilerServices;
using Microsoft.Extensions.AI;
using MiniGemini.Generation;

namespace MiniGemini.Hosting;

/// <summary>
/// A Microsoft.Extensions.AI <see cref="IChatClient"/> over a <see cref="MiniGeminiModel"/>. Images come from
/// <see cref="DataContent"/> (bytes or data URIs); a <see cref="UriContent"/> with a <c>file:</c> URI is read only inside
/// the folder the host allows with <see cref="LocalImageRoot"/> (chat content comes from users: by default it cannot make
/// the server read its own files), and remote URIs are not fetched. System messages become the template's system prompt. Sampling maps from <see cref="ChatOptions"/>:
/// Temperature, TopP, TopK, Seed, MaxOutputTokens and StopSequences; <c>AdditionalProperties["generate_image"] = true</c>
/// asks for a diffusion prompt (MGM's <c>&lt;GEN&gt;</c>), and <see cref="ChatOptions.RawRepresentationFactory"/> may return a
/// <see cref="GenerationOptions"/> to set everything else.
/// </summary>
/// <remarks>
/// Safe for concurrent callers: requests are queued and run one at a time on the model (a local model has one set of
/// weights and one device; interleaving requests would only make each slower). Cancellation is honoured while waiting
/// in the queue and between generated tokens. Options passed in are never modified.
/// </remarks>
public sealed class MiniGeminiChatClient : IChatClient
{
    /// <summary>The <see cref="ChatOptions.AdditionalProperties"/> key that asks for an image prompt.</summary>
    public const string GenerateImageProperty = "generate_image";

    readonly MiniGeminiModel _model;
    readonly bool _ownsModel;
    readonly SemaphoreSlim _queue = new(1, 1);
    readonly ChatClientMetadata _metadata;

    /// <summary>Wraps a model. With <paramref name="ownsModel"/> the client disposes the model when disposed.</summary>
    public MiniGeminiChatClient(MiniGeminiModel model, string? modelId = null, bool ownsModel = false)
    {
        ArgumentNullException.ThrowIfNull(model);
        _model = model;
        _ownsModel = ownsModel;
        ModelId = modelId ?? model.Name;
        _metadata = new ChatClientMetadata("MiniGemini.Core", null, ModelId);
    }

    /// <summary>The model id reported in responses.</summary>
    public string ModelId { get; }

    /// <summary>
    /// The folder under which <c>file:</c> image URIs in chat content may be read; null (the default) refuses every
    /// <c>file:</c> URI. A path outside it is refused before the file system is asked about it, so a message cannot
    /// learn whether a file exists.
    /// </summary>
    public string? LocalImageRoot { get; init; }

    /// <inheritdoc/>
    public async Task<ChatResponse> GetResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null, CancellationToken cancellationToken = default)
    {
        var (prompt, generation) = Translate(messages, options, this, LocalImageRoot);
        await _queue.WaitAsync(cancellationToken).ConfigureAwait(false);
        MiniGeminiResponse answer;
        try
        {
            answer = await _model.GenerateAsync(prompt, generation, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            _queue.Release();
        }
        var message = new ChatMessage(ChatRole.Assistant, ContentsOf(answer)) { MessageId = Guid.NewGuid().ToString("N") };
        return new ChatResponse(message)
        {
            ResponseId = Guid.NewGuid().ToString("N"),
            ModelId = ModelId,
            CreatedAt = DateTimeOffset.UtcNow,
            FinishReason = Map(answer.FinishReason),
            Usage = UsageOf(answer),
        };
    }

    /// <inheritdoc/>
    public async IAsyncEnumerable<ChatResponseUpdate> GetStreamingResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null,
        [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        var (prompt, generation) = Translate(messages, options, this, LocalImageRoot);
        var responseId = Guid.NewGuid().ToString("N");
        var messageId = Guid.NewGuid().ToString("N");
        await _queue.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            await foreach (var update in _model.GenerateStreamingAsync(prompt, generation, cancellationToken).ConfigureAwait(false))
            {
                var contents = new List<AIContent>();
                if (update.Text.Length > 0) contents.Add(new TextContent(update.Text));
                if (update.Completed is { } done)
                {
                    if (done.Image is { } image) contents.Add(new DataContent(image.Data, image.MediaType));
                    contents.Add(new UsageContent(UsageOf(done)));
                }
                if (contents.Count == 0) continue;
                yield return new ChatResponseUpdate(ChatRole.Assistant, contents)
                {
                    ResponseId = responseId,
                    MessageId = messageId,
                    ModelId = ModelId,
                    CreatedAt = DateTimeOffset.UtcNow,
                    FinishReason = update.Completed is { } d ? Map(d.FinishReason) : null,
                };
            }
        }
        finally
        {
            _queue.Release();
        }
    }

    /// <inheritdoc/>
    public object? GetService(Type serviceType, object? serviceKey = null)
    {
        ArgumentNullException.ThrowIfNull(serviceType);
        if (serviceKey is not null) return null;
        if (serviceType == typeof(ChatClientMetadata)) return _metadata;
        if (serviceType.IsInstanceOfType(_model)) return _model;
        return serviceType.IsInstanceOfType(this) ? this : null;
    }

    /// <inheritdoc/>
    public void Dispose()
    {
        if (_ownsModel) _model.Dispose();
        _queue.Dispose();
    }

    static List<AIContent> ContentsOf(MiniGeminiResponse answer)
    {
        var contents = new List<AIContent> { new TextContent(answer.Text) };
        if (answer.Image is { } image) contents.Add(new DataContent(image.Data, image.MediaType));
        return contents;
    }

    static UsageDetails UsageOf(MiniGeminiResponse answer) => new()
    {
        InputTokenCount = answer.PromptTokens,
        CachedInputTokenCount = answer.CachedPromptTokens,
        OutputTokenCount = answer.CompletionTokens,
        TotalTokenCount = answer.PromptTokens + answer.CompletionTokens,
    };

    static ChatFinishReason Map(FinishReason reason) => reason == FinishReason.Length ? ChatFinishReason.Length : ChatFinishReason.Stop;

    /// <summary>Messages and options → prompt and generation options; <paramref name="client"/> is handed to the options' raw-representation factory.</summary>
    internal static (MiniGeminiPrompt Prompt, GenerationOptions? Options) Translate(IEnumerable<ChatMessage> messages, ChatOptions? options, IChatClient client,
        string? localImageRoot = null)
    {
        ArgumentNullException.ThrowIfNull(messages);
        var turns = new List<ChatTurn>();
        var system = new List<string>();
        foreach (var message in messages)
        {
            if (message.Role == ChatRole.System)
            {
                system.Add(message.Text);
                continue;
            }
            if (message.Role == ChatRole.User)
                turns.Add(ChatTurn.User(message.Text, ImagesOf(message, localImageRoot).ToArray()));
            else if (message.Role == ChatRole.Assistant)
                turns.Add(ChatTurn.Assistant(message.Text));
            else
                throw new NotSupportedException($"Messages with role '{message.Role}' are not supported (system, user and assistant are).");
        }
        if (turns.Count == 0 || turns[^1].Role != TurnRole.User)
            throw new ArgumentException("The conversation must end with a user message.", nameof(messages));
        if (!string.IsNullOrEmpty(options?.Instructions)) system.Add(options.Instructions);

        var prompt = new MiniGeminiPrompt
        {
            Turns = turns,
            SystemPrompt = system.Count > 0 ? string.Join("\n", system) : null,
            GenerateImage = options?.AdditionalProperties?.TryGetValue(GenerateImageProperty, out var flag) == true && flag is true or "true",
        };
        return (prompt, GenerationOptionsOf(options, client));
    }

    static GenerationOptions? GenerationOptionsOf(ChatOptions? options, IChatClient client)
    {
        if (options is null) return null;
        // Mini-Gemini has no tool calling and no constrained decoding: a request that depends on them is refused, not
        // answered as if they had been applied. Tools in auto mode are optional for the model, so they are ignored.
        if (options.ToolMode is RequiredChatToolMode required && options.Tools is { Count: > 0 })
            throw new NotSupportedException(
                $"ChatOptions.ToolMode requires a tool call{(required.RequiredFunctionName is { } f ? $" to '{f}'" : "")}, but Mini-Gemini cannot call tools.");
        if (options.ResponseFormat is ChatResponseFormatJson)
            throw new NotSupportedException("ChatOptions.ResponseFormat asks for JSON, but Mini-Gemini cannot constrain its output to JSON.");
        var raw = options.RawRepresentationFactory?.Invoke(client) as GenerationOptions;
        var o = raw ?? new GenerationOptions();
        return o with
        {
            Temperature = options.Temperature ?? o.Temperature,
            TopP = options.TopP ?? o.TopP,
            TopK = options.TopK ?? o.TopK,
            Seed = options.Seed ?? o.Seed,
            MaxNewTokens = options.MaxOutputTokens ?? o.MaxNewTokens,
            StopStrings = options.StopSequences is { Count: > 0 } stops ? [.. o.StopStrings, .. stops] : o.StopStrings,
        };
    }

    static IEnumerable<ImageInput> ImagesOf(ChatMessage message, string? localImageRoot)
    {
        int index = 0;
        foreach (var content in message.Contents)
        {
            switch (content)
            {
                case DataContent data when data.HasTopLevelMediaType("image"):
                    yield return ImageInput.FromBytes(data.Data, data.Name ?? $"image {++index}");
                    break;
                case DataContent data:
                    throw new NotSupportedException($"Content of media type '{data.MediaType}' is not supported; only images and text are.");
                case UriContent uri when uri.Uri.IsFile:
                    yield return ImageInput.FromFile(AllowedLocalPath(uri.Uri, localImageRoot));
                    break;
                case UriContent uri:
                    throw new NotSupportedException($"Image URI '{uri.Uri}' is not a file URI; download it and pass a DataContent.");
            }
        }
    }

    static string AllowedLocalPath(Uri uri, string? root)
    {
        if (root is null)
            throw new UnauthorizedAccessException(
                $"Image URI '{uri}': file URIs in chat content are not read (set MiniGeminiChatClient.LocalImageRoot to allow a folder); pass the image as DataContent.");
        var folder = Path.TrimEndingDirectorySeparator(Path.GetFullPath(root)) + Path.DirectorySeparatorChar;
        var path = Path.GetFullPath(uri.LocalPath);
        // A link inside the folder may point anywhere: its final target must be inside too.
        var target = File.Exists(path) ? new FileInfo(path).ResolveLinkTarget(returnFinalTarget: true)?.FullName ?? path : path;
        if (!path.StartsWith(folder, StringComparison.Ordinal) || !target.StartsWith(folder, StringComparison.Ordinal))
            throw new UnauthorizedAccessException($"Image URI '{uri}' is outside the folder file URIs may be read from.");
        return path;
    }
}
