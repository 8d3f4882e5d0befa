using MiniGemini.Text;
using MiniGemini.Vision;
using static TorchSharp.torch;

namespace MiniGemini;

/// <summary>
/// The text and pixel half of a request, as HF's LlavaProcessor: images are read and preprocessed (padded to square,
/// resized to the HR side, normalized), and a conversation is rendered with the model's template and tokenized with an
/// image slot (<see cref="ImageSlotTokenizer.ImageTokenIndex"/>) where each image goes. The model then encodes the
/// pixels and splices the image tokens into the slots.
/// </summary>
public sealed class MiniGeminiProcessor
{
    readonly ImageProcessor _images;

    /// <summary>Creates a processor.</summary>
    /// <param name="tokenizer">The model's tokenizer.</param>
    /// <param name="template">The conversation template prompts are rendered with.</param>
    /// <param name="imageOptions">How images are read and preprocessed.</param>
    /// <param name="imageTokensPerImage">How many positions one image takes in the LLM.</param>
    public MiniGeminiProcessor(MiniGeminiTokenizer tokenizer, ConversationTemplate template, ImagePreprocessOptions imageOptions, int imageTokensPerImage)
    {
        ArgumentNullException.ThrowIfNull(tokenizer);
        ArgumentNullException.ThrowIfNull(template);
        ArgumentNullException.ThrowIfNull(imageOptions);
        ArgumentOutOfRangeException.ThrowIfLessThan(imageTokensPerImage, 1);
        Tokenizer = tokenizer;
        Template = template;
        ImageOptions = imageOptions;
        ImageTokensPerImage = imageTokensPerImage;
        _images = new ImageProcessor(imageOptions);
    }

    /// <summary>The tokenizer.</summary>
    public MiniGeminiTokenizer Tokenizer { get; }

    /// <summary>The conversation template prompts are rendered with.</summary>
    public ConversationTemplate Template { get; }

    /// <summary>How images are read and preprocessed.</summary>
    public ImagePreprocessOptions ImageOptions { get; }

    /// <summary>How many positions one image takes in the LLM.</summary>
    public int ImageTokensPerImage { get; }

    /// <summary>
    /// Renders the conversation with the template and tokenizes it, with one <see cref="ImageSlotTokenizer.ImageTokenIndex"/>
    /// where each image goes. Text is encoded literally: special tokens are recognised in the template's scaffold only.
    /// </summary>
    /// <exception cref="ArgumentException">The prompt is empty, does not alternate user and assistant turns, ends with an answer, or its text contains a literal <c>&lt;image&gt;</c>.</exception>
    public int[] Tokenize(MiniGeminiPrompt prompt)
    {
        ArgumentNullException.ThrowIfNull(prompt);
        var turns = prompt.Turns ?? throw new ArgumentException("The prompt has no turns.", nameof(prompt));
        if (turns.Count == 0 || turns[^1].Role != TurnRole.User)
            throw new ArgumentException("A prompt must end with a user turn.", nameof(prompt));
        var exchanges = new List<ChatExchange>();
        for (int i = 0; i < turns.Count; i++)
        {
            var turn = turns[i];
            if (turn.Role != TurnRole.User)
                throw new ArgumentException($"Turn {i} is an answer where a user turn was expected (turns must alternate user, assistant, …).", nameof(prompt));
            RefuseImageText(turn.Text, $"Turn {i}");
            string? answer = null;
            if (i + 1 < turns.Count)
            {
                var next = turns[++i];
                if (next.Role != TurnRole.Assistant)
                    throw new ArgumentException($"Turn {i} should be the answer to turn {i - 1}.", nameof(prompt));
                RefuseImageText(next.Text, $"Turn {i}");
                answer = next.Text;
            }
            exchanges.Add(new ChatExchange(turn.Text, answer, turn.Images.Count));
        }
        if (prompt.SystemPrompt is not null) RefuseImageText(prompt.SystemPrompt, "The system prompt");
        var template = prompt.SystemPrompt is null ? Template : Template.WithSystemPrompt(prompt.SystemPrompt);
        return ImageSlotTokenizer.Tokenize(Tokenizer, template.Render(exchanges, prompt.GenerateImage));
    }

    /// <summary>The LLM positions tokenized ids take: each image slot stands for <see cref="ImageTokensPerImage"/>.</summary>
    public int CountPositions(IReadOnlyList<int> ids)
    {
        ArgumentNullException.ThrowIfNull(ids);
        int images = ImageSlotTokenizer.CountImages(ids);
        return ids.Count - images + images * ImageTokensPerImage;
    }

    /// <summary>Reads and preprocesses images → normalized HR pixels <c>[B, 3, S, S]</c> on the CPU.</summary>
    /// <exception cref="InvalidImageException">An image cannot be decoded or is over the pixel budget.</exception>
    public Tensor PreprocessImages(IReadOnlyList<ImageInput> images)
    {
        ArgumentNullException.ThrowIfNull(images);
        return Preprocess(images.Select(Read).ToList());
    }

    /// <summary>Decoded images → normalized HR pixels <c>[B, 3, S, S]</c>.</summary>
    internal Tensor Preprocess(IReadOnlyList<ImageRgb8> images) => _images.HighResolution(images);

    /// <summary>Crops normalized at their own size <c>[B, 3, h, w]</c>, for training the HR tower on parts of pictures.</summary>
    internal Tensor NormalizeCrops(IReadOnlyList<ImageInput> crops) => _images.NormalizeAsIs(crops.Select(Read).ToList());

    /// <summary>Decodes one image, within the pixel budget.</summary>
    internal ImageRgb8 Read(ImageInput input) => Decode(BytesOf(input), input);

    /// <summary>An image's bytes as given (read from its file when it has a path).</summary>
    internal ReadOnlyMemory<byte> BytesOf(ImageInput input) => input.Path is { } path ? ImageReader.ReadBytes(path, ImageOptions) : input.Bytes;

    /// <summary>Decodes image bytes read before.</summary>
    internal ImageRgb8 Decode(ReadOnlyMemory<byte> bytes, ImageInput input) => ImageReader.Read(bytes, input.Path ?? input.Name, ImageOptions);

    /// <summary>
    /// Refuses a prompt that cannot fit <paramref name="budget"/> positions whatever its text encodes to: every id
    /// stands for at most <see cref="MiniGeminiTokenizer.MaxCharsPerToken"/> characters, every image for
    /// <see cref="ImageTokensPerImage"/> positions. Costs a pass over the characters, not a tokenization.
    /// </summary>
    /// <remarks>
    /// Only characters that normalization cannot remove count (whitespace runs may collapse, combining marks may
    /// compose), and at a third of their number (NFKC composes at most three Hangul jamo into one syllable), so that
    /// a prompt that fits is never refused here.
    /// </remarks>
    internal void RefuseOverlong(MiniGeminiPrompt prompt, int budget, int? maxNewTokens, int contextLength)
    {
        ArgumentNullException.ThrowIfNull(prompt);
        if (prompt.Turns is null) return; // Tokenize names the fault
        long characters = Lasting(prompt.SystemPrompt) + prompt.Turns.Sum(t => Lasting(t?.Text));
        long images = prompt.Turns.Sum(t => (long)(t?.Images?.Count ?? 0));
        long atLeast = characters / (3L * Tokenizer.MaxCharsPerToken) + images * ImageTokensPerImage;
        if (atLeast > budget)
            throw new ContextLengthExceededException((int)Math.Min(int.MaxValue, atLeast + contextLength - budget), contextLength,
                $"The prompt has at least {atLeast} positions ({characters} characters of text, {images} image(s) of {ImageTokensPerImage} tokens)" +
                $"{(maxNewTokens is { } n ? $" and {n} new tokens were asked for" : "")}: more than the model's context ({contextLength}) holds.");

        static long Lasting(string? text)
        {
            long count = 0;
            foreach (var c in text ?? "")
                if (!char.IsWhiteSpace(c) && char.GetUnicodeCategory(c) is not (System.Globalization.UnicodeCategory.NonSpacingMark
                        or System.Globalization.UnicodeCategory.SpacingCombiningMark or System.Globalization.UnicodeCategory.EnclosingMark))
                    count++;
            return count;
        }
    }

    /// <summary>Text is encoded literally, so an <c>&lt;image&gt;</c> in it would silently be no image: refused where it stands.</summary>
    static void RefuseImageText(string text, string where)
    {
        if (text.Contains(ImageSlotTokenizer.ImageToken, StringComparison.Ordinal))
            throw new ArgumentException($"{where} contains the literal text '{ImageSlotTokenizer.ImageToken}'; pass images as ImageInput instead.", "prompt");
    }
}
