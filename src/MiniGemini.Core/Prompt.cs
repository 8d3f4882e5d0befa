namespace MiniGemini;

/// <summary>An image handed to the model: a file, encoded bytes, or a stream; decoded when the prompt is run.</summary>
public sealed class ImageInput
{
    ImageInput(string name, string? path, ReadOnlyMemory<byte> bytes)
    {
        Name = name;
        Path = path;
        Bytes = bytes;
    }

    /// <summary>A name for messages (the file path or a caller-given name).</summary>
    public string Name { get; }

    internal string? Path { get; }

    internal ReadOnlyMemory<byte> Bytes { get; }

    /// <summary>An image file (any common format).</summary>
    public static ImageInput FromFile(string path)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(path);
        return new ImageInput(path, System.IO.Path.GetFullPath(path), default);
    }

    /// <summary>Encoded image bytes (PNG, JPEG, …).</summary>
    public static ImageInput FromBytes(ReadOnlyMemory<byte> bytes, string name = "image")
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(name);
        return new ImageInput(name, null, bytes);
    }

    /// <summary>Reads a stream to its end now.</summary>
    public static ImageInput FromStream(Stream stream, string name = "image")
    {
        ArgumentNullException.ThrowIfNull(stream);
        using var copy = new MemoryStream();
        stream.CopyTo(copy);
        return FromBytes(copy.ToArray(), name);
    }

    /// <inheritdoc/>
    public override string ToString() => Name;
}

/// <summary>Who speaks a turn.</summary>
public enum TurnRole
{
    /// <summary>The user: text and images.</summary>
    User,
    /// <summary>The model's earlier answer.</summary>
    Assistant,
}

/// <summary>One turn of a conversation.</summary>
/// <param name="Role">Speaker.</param>
/// <param name="Text">What was said.</param>
/// <param name="Images">Images of a user turn (rendered as <c>&lt;image&gt;</c> lines before the text, as MGM does).</param>
public sealed record ChatTurn(TurnRole Role, string Text, IReadOnlyList<ImageInput> Images)
{
    /// <summary>What was said.</summary>
    public string Text { get; init; } = Text ?? throw new ArgumentNullException(nameof(Text), "A turn needs its text (empty is allowed).");

    /// <summary>Images of a user turn.</summary>
    public IReadOnlyList<ImageInput> Images { get; init; } = Images is null || Images.Contains(null!)
        ? throw new ArgumentNullException(nameof(Images), "A turn's image list and its images must not be null.")
        : Images;

    /// <summary>A user turn.</summary>
    public static ChatTurn User(string text, params ImageInput[] images) => new(TurnRole.User, text, images);

    /// <summary>An earlier answer of the model.</summary>
    public static ChatTurn Assistant(string text) => new(TurnRole.Assistant, text, []);
}

/// <summary>What to ask: a conversation (one or more turns, ending with a user turn), optionally asking for an image.</summary>
public sealed record MiniGeminiPrompt
{
    /// <summary>The conversation so far, ending with the user turn to answer.</summary>
    public required IReadOnlyList<ChatTurn> Turns { get; init; }

    /// <summary>
    /// Ask the model to write a diffusion prompt: appends MGM's <c>" &lt;GEN&gt;"</c> to the last user turn; the
    /// answer's <c>&lt;h&gt;…&lt;/h&gt;</c> caption is returned (and rendered when an image generator is configured).
    /// </summary>
    public bool GenerateImage { get; init; }

    /// <summary>A system prompt replacing the template's own, when the template has one.</summary>
    public string? SystemPrompt { get; init; }

    /// <summary>A one-turn prompt.</summary>
    public static MiniGeminiPrompt Ask(string text, params ImageInput[] images) => new() { Turns = [ChatTurn.User(text, images)] };

    /// <summary>All images of the conversation, in order.</summary>
    public IEnumerable<ImageInput> Images => Turns.SelectMany(t => t.Images);
}

/// <summary>Why generation ended.</summary>
public enum FinishReason
{
    /// <summary>An end-of-sequence token or a stop string.</summary>
    Stop,
    /// <summary>The token budget ran out.</summary>
    Length,
}

/// <summary>The answer to a <see cref="MiniGeminiPrompt"/>.</summary>
public sealed record MiniGeminiResponse
{
    /// <summary>The answer text (special tokens removed, stop strings cut).</summary>
    public required string Text { get; init; }
    /// <summary>The generated token ids.</summary>
    public required IReadOnlyList<int> TokenIds { get; init; }
    /// <summary>Tokens in the prompt, image tokens included.</summary>
    public required int PromptTokens { get; init; }
    /// <summary>
    /// Prompt positions whose keys and values were reused from an earlier request instead of computed (a follow-up turn
    /// of a conversation; see <see cref="MiniGeminiOptions.ConversationCacheBytes"/>).
    /// </summary>
    public int CachedPromptTokens { get; init; }
    /// <summary>Why generation ended.</summary>
    public required FinishReason FinishReason { get; init; }
    /// <summary>For image requests: the diffusion prompt the model wrote (last complete <c>&lt;h&gt;…&lt;/h&gt;</c>), if any.</summary>
    public string? ImagePrompt { get; init; }
    /// <summary>For image requests with a configured generator: the rendered image.</summary>
    public GeneratedImage? Image { get; init; }
    /// <summary>Generated tokens.</summary>
    public int CompletionTokens => TokenIds.Count;
}
