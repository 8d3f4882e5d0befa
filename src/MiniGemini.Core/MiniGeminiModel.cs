using System.Runtime.CompilerServices;
using System.Threading.Channels;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using MiniGemini.Checkpoints;
using MiniGemini.Modeling;
using MiniGemini.Generation;
using MiniGemini.Hosting;
using MiniGemini.Text;
using MiniGemini.Vision;
using TorchSharp;
using static TorchSharp.torch;

namespace MiniGemini;

/// <summary>One piece of a streamed answer.</summary>
/// <param name="Text">New answer text (may be empty on the last update).</param>
/// <param name="Completed">On the last update only: the whole response.</param>
public sealed record MiniGeminiStreamUpdate(string Text, MiniGeminiResponse? Completed = null);

/// <summary>
/// A loaded Mini-Gemini model: images and a conversation in, an answer out (and, on request, a diffusion prompt and the
/// image rendered from it). Build one with <see cref="MiniGeminiBuilder"/>.
/// </summary>
/// <remarks>
/// Thread-safe: requests are queued and run one at a time (a model has one set of weights on one device). Every call
/// checks its <see cref="CancellationToken"/> between generated tokens. Dispose the model to free its native memory.
/// </remarks>
public sealed class MiniGeminiModel : IDisposable, IAsyncDisposable
{
    readonly MiniGeminiForCausalLM _model;
    readonly ImageProcessor _images;
    readonly SdxlBridge? _imageGenerator;
    readonly ILogger _logger;
    readonly SemaphoreSlim _gate = new(1, 1);
    readonly ConversationCache? _conversations;
    bool _disposed;

    internal MiniGeminiModel(string name, MiniGeminiForCausalLM model, MiniGeminiTokenizer tokenizer,
        ConversationTemplate template, GenerationDefaults defaults, Device device, ModelPrecision precision, SdxlBridge? imageGenerator,
        ILogger? logger, long conversationCacheBytes = 0)
    {
        Name = name;
        Config = model.MgmConfig;
        _model = model;
        Tokenizer = tokenizer;
        Template = template;
        Defaults = defaults;
        TorchDevice = device;
        Precision = precision;
        _images = new ImageProcessor(model.Views);
        _imageGenerator = imageGenerator;
        _logger = logger ?? NullLogger.Instance;
        if (conversationCacheBytes > 0) _conversations = new ConversationCache(conversationCacheBytes, model.TokensPerImage);
    }

    /// <summary>The model's name (its folder name).</summary>
    public string Name { get; }

    /// <summary>The model's configuration, after builder overrides.</summary>
    public MgmConfig Config { get; }

    /// <summary>The tokenizer.</summary>
    public MiniGeminiTokenizer Tokenizer { get; }

    /// <summary>The conversation template prompts are rendered with.</summary>
    public ConversationTemplate Template { get; }

    /// <summary>
    /// What a request that passes no <see cref="GenerationOptions"/> generates with (generation_config.json's settings),
    /// and the stop and pad ids filled into options that leave them out.
    /// </summary>
    public GenerationDefaults Defaults { get; }

    /// <summary>The device the model runs on, e.g. <c>cpu</c> or <c>cuda:0</c>.</summary>
    public string Device => TorchDevice.ToString();

    /// <summary>Weight and activation precision.</summary>
    public ModelPrecision Precision { get; }

    /// <summary>How many LLM positions one image takes (576 for MGM-7B, 2880 for HD models).</summary>
    public int ImageTokensPerImage => _model.TokensPerImage;

    /// <summary>The most positions a prompt and its answer may take together (<c>max_position_embeddings</c>).</summary>
    public int ContextLength => Config.Llm.MaxPositionEmbeddings;

    /// <summary>
    /// The positions a prompt takes: its text tokens plus <see cref="ImageTokensPerImage"/> per image. Prompt plus
    /// <see cref="GenerationOptions.MaxNewTokens"/> must fit in <see cref="ContextLength"/>. Images are not decoded.
    /// </summary>
    /// <exception cref="ArgumentException">The prompt is malformed (see <see cref="Generate"/>).</exception>
    /// <exception cref="ObjectDisposedException">The model was disposed.</exception>
    public int CountPromptTokens(MiniGeminiPrompt prompt)
    {
        ThrowIfDisposed();
        return Positions(PromptIds(prompt));
    }

    int Positions(int[] ids)
    {
        int images = ImageSlotTokenizer.CountImages(ids);
        return ids.Length - images + images * ImageTokensPerImage;
    }

    /// <summary>
    /// Refuses a prompt that cannot fit whatever its text encodes to: every id stands for at most
    /// <see cref="MiniGeminiTokenizer.MaxCharsPerToken"/> characters, every image for <see cref="ImageTokensPerImage"/>
    /// positions. Costs a pass over the characters, not a tokenization.
    /// </summary>
    /// <remarks>
    /// Only characters that normalization cannot remove count (whitespace runs may collapse, combining marks may
    /// compose), and at a third of their number (NFKC composes at most three Hangul jamo into one syllable), so that
    /// a prompt that fits is never refused here.
    /// </remarks>
    void RefuseOverlong(MiniGeminiPrompt prompt, int budget, int? maxNewTokens)
    {
        ArgumentNullException.ThrowIfNull(prompt);
        if (prompt.Turns is null) return; // PromptIds names the fault
        long characters = Lasting(prompt.SystemPrompt) + prompt.Turns.Sum(t => Lasting(t?.Text));
        long images = prompt.Turns.Sum(t => (long)(t?.Images?.Count ?? 0));
        long atLeast = characters / (3L * Tokenizer.MaxCharsPerToken) + images * ImageTokensPerImage;
        if (atLeast > budget)
            throw new ContextLengthExceededException((int)Math.Min(int.MaxValue, atLeast + ContextLength - budget), ContextLength,
                $"The prompt has at least {atLeast} positions ({characters} characters of text, {images} image(s) of {ImageTokensPerImage} tokens)" +
                $"{(maxNewTokens is { } n ? $" and {n} new tokens were asked for" : "")}: more than the model's context ({ContextLength}) holds.");

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

    /// <summary>The preprocessing the model applies to images.</summary>
    public ImagePreprocessOptions ImageOptions => _model.Views;

    internal Device TorchDevice { get; }

    /// <summary>The module tree: towers, mining, projector and LLM under their checkpoint keys.</summary>
    internal MiniGeminiForCausalLM Module => _model;

    /// <summary>The folder the model was loaded from, and the CLIP tower folder that gave its architecture (saving copies their configs).</summary>
    internal (string ModelFolder, string? ClipFolder)? Source { get; init; }

    /// <summary>Reads and preprocesses images → normalized HR pixels <c>[B, 3, S, S]</c> on the CPU.</summary>
    internal Tensor PreprocessImages(IReadOnlyList<ImageInput> images)
    {
        using var tensors = _images.ToTensors(images.Select(Read).ToList());
        return tensors.Hr.alias();
    }

    /// <summary>Answers one prompt.</summary>
    /// <exception cref="ArgumentException">The prompt is empty, ends with an answer, or its text contains a literal <c>&lt;image&gt;</c>.</exception>
    /// <exception cref="InvalidImageException">An image cannot be decoded or is over the pixel budget.</exception>
    /// <exception cref="ContextLengthExceededException">The prompt plus the new tokens exceed the model's context.</exception>
    /// <exception cref="ImageGenerationException">An image was asked for and the configured generator failed.</exception>
    /// <exception cref="ObjectDisposedException">The model was disposed (the message names it).</exception>
    public MiniGeminiResponse Generate(MiniGeminiPrompt prompt, GenerationOptions? options = null, CancellationToken cancellationToken = default)
        => GenerateBatch([prompt], options, cancellationToken)[0];

    /// <summary>
    /// Answers several prompts in one batch (left-padded, so each answer equals what the prompt gives alone, up to
    /// floating-point rounding).
    /// </summary>
    /// <inheritdoc cref="Generate" path="/exception"/>
    public IReadOnlyList<MiniGeminiResponse> GenerateBatch(IReadOnlyList<MiniGeminiPrompt> prompts, GenerationOptions? options = null,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(prompts);
        ThrowIfDisposed();
        _gate.Wait(cancellationToken);
        try
        {
            var responses = Run(prompts, options, (_, _) => { }, cancellationToken);
            return responses.Select(r => RenderImage(r, cancellationToken).GetAwaiter().GetResult()).ToList();
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <summary>Answers one prompt without blocking the caller; the work runs on the thread pool.</summary>
    /// <inheritdoc cref="Generate" path="/exception"/>
    public async Task<MiniGeminiResponse> GenerateAsync(MiniGeminiPrompt prompt, GenerationOptions? options = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(prompt);
        ThrowIfDisposed();
        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            var response = await Task.Run(() => Run([prompt], options, (_, _) => { }, cancellationToken)[0], cancellationToken).ConfigureAwait(false);
            return await RenderImage(response, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <summary>
    /// Answers one prompt as a stream of text deltas (never splitting a character); the last update carries the whole
    /// response. Leaving the loop early stops generation.
    /// </summary>
    /// <inheritdoc cref="Generate" path="/exception"/>
    public async IAsyncEnumerable<MiniGeminiStreamUpdate> GenerateStreamingAsync(MiniGeminiPrompt prompt, GenerationOptions? options = null,
        [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(prompt);
        ThrowIfDisposed();
        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var channel = Channel.CreateUnbounded<string>(new UnboundedChannelOptions { SingleReader = true, SingleWriter = true });
        // All tensor work stays on one pool thread (dispose scopes and inference mode are thread-local); text crosses over.
        // The producer, not the enumerator, releases the gate: a stream that is abandoned without being disposed
        // frees the model when its generation ends. It is started without the token so that it always runs (and releases).
        var producer = Task.Run(() =>
        {
            try
            {
                return Run([prompt], options, (_, delta) => channel.Writer.TryWrite(delta), stop.Token)[0];
            }
            finally
            {
                channel.Writer.TryComplete();
                _gate.Release();
            }
        }, CancellationToken.None);
        try
        {
            await foreach (var delta in channel.Reader.ReadAllAsync(cancellationToken).ConfigureAwait(false))
                yield return new MiniGeminiStreamUpdate(delta);
            var response = await producer.ConfigureAwait(false);
            yield return new MiniGeminiStreamUpdate("", await RenderImage(response, cancellationToken).ConfigureAwait(false));
        }
        finally
        {
            stop.Cancel();
            try { await producer.ConfigureAwait(false); } catch (Exception) { /* reported through the enumeration already, or cancelled by us */ }
        }
    }

    async Task<MiniGeminiResponse> RenderImage(MiniGeminiResponse response, CancellationToken cancellationToken)
    {
        if (response.ImagePrompt is null || _imageGenerator is null) return response;
        var image = await _imageGenerator.GenerateAsync(response.ImagePrompt, cancellationToken).ConfigureAwait(false);
        return response with { Image = image };
    }

    /// <summary>The whole request on the calling thread: prompt → ids, images → tokens, splice, decode.</summary>
    IReadOnlyList<MiniGeminiResponse> Run(IReadOnlyList<MiniGeminiPrompt> prompts, GenerationOptions? options,
        Action<int, string> onDelta, CancellationToken cancellationToken)
    {
        ThrowIfDisposed();
        if (prompts.Count == 0) throw new ArgumentException("No prompts were given.", nameof(prompts));
        var generation = Defaults.Resolve(options);
        generation.Validate();

        // Limits before work: a bound from the text's length before tokenizing, the exact count before any image is read.
        int budget = ContextLength - (generation.MaxNewTokens ?? 1);
        foreach (var prompt in prompts) RefuseOverlong(prompt, budget, generation.MaxNewTokens);
        var ids = prompts.Select(PromptIds).ToList();
        foreach (var row in ids)
        {
            int positions = Positions(row);
            if (positions > budget)
                throw new ContextLengthExceededException(positions + ContextLength - budget, ContextLength,
                    $"The prompt has {positions} positions{(generation.MaxNewTokens is { } n ? $" and {n} new tokens were asked for" : " and needs one new token")}: " +
                    $"{positions + ContextLength - budget} exceeds the model's context ({ContextLength}).");
        }
        var images = prompts.SelectMany(p => p.Images).ToList();
        using var activity = MiniGeminiTelemetry.Source.StartActivity("generate");
        activity?.SetTag("gen_ai.request.model", Name);
        activity?.SetTag("minigemini.images", images.Count);
        var clock = System.Diagnostics.Stopwatch.StartNew();
        TimeSpan? firstToken = null;
        int generated = 0;
        using var _ = inference_mode();
        using var scope = NewDisposeScope();
        var hashes = new string?[images.Count];
        var imageTokens = images.Count == 0 ? null : EncodeImageInputs(images, hashes);
        var rows = new List<Tensor>();
        int imageIndex = 0;
        foreach (var row in ids)
        {
            int count = ImageSlotTokenizer.CountImages(row);
            rows.Add(Splice(row, imageTokens?.narrow(0, imageIndex, count)));
            imageIndex += count;
        }
        var stops = Template.StopStrings.Concat(generation.StopStrings).ToArray();
        var states = rows.Select(r => new RowState(Tokenizer.CreateStreamingDecoder(), new StopStringMatcher(stops), (int)r.shape[0])).ToArray();
        var reuse = ids.Count == 1 ? Reuse(ids[0], hashes, states[0], rows) : null;
        var (embeds, mask) = MiniGeminiForCausalLM.LeftPad(rows);
        activity?.SetTag("minigemini.cached_positions", reuse?.Length ?? 0);
        Log.Generating(_logger, rows.Count, embeds.shape[1], images.Count);

        foreach (var step in TokenGenerator.Generate(_model, embeds, mask, generation, cancellationToken, reuse))
        {
            firstToken ??= clock.Elapsed;
            for (int b = 0; b < states.Length; b++)
            {
                var state = states[b];
                if (state.Done || !step.Emitted[b]) continue;
                generated++;
                state.Tokens.Add(step.TokenIds[b]);
                var delta = state.Matcher.Push(state.Decoder.Append(step.TokenIds[b]));
                state.Text.Append(delta);
                if (delta.Length > 0) onDelta(b, delta);
                if (state.Matcher.Stopped || step.Finished[b]) state.Finish(FinishReason.Stop);
            }
            if (states.All(s => s.Done)) break;
        }
        RecordTelemetry(activity, states.Sum(s => s.PromptLength), generated, rows.Count, firstToken, clock.Elapsed);
        return states.Select((s, b) =>
        {
            if (!s.Done)
            {
                var tail = s.Matcher.Push(s.Decoder.Flush()) + s.Matcher.Flush();
                s.Text.Append(tail);
                if (tail.Length > 0) onDelta(b, tail);
                s.Finish(s.Matcher.Stopped ? FinishReason.Stop : FinishReason.Length);
            }
            var text = s.Text.ToString();
            return new MiniGeminiResponse
            {
                Text = text.Trim(),
                TokenIds = s.Tokens,
                PromptTokens = s.PromptLength,
                CachedPromptTokens = reuse?.Length ?? 0,
                FinishReason = s.Reason,
                ImagePrompt = prompts[b].GenerateImage ? ImageCaption.Extract(text) : null,
            };
        }).ToList();
    }

    /// <summary>
    /// For a single prompt, with the conversation cache on: the kept keys and values of its longest prefix seen before
    /// (the row's embeddings are cut to the positions after it), and where the cache goes when the answer is done.
    /// </summary>
    TokenGenerator.CacheReuse? Reuse(int[] ids, string?[] imageHashes, RowState state, List<Tensor> rows)
    {
        if (_conversations is null) return null;
        int image = 0;
        var slots = ids.Select(id => id == ImageSlotTokenizer.ImageTokenIndex ? new PromptSlot(id, imageHashes[image++]) : new PromptSlot(id, null)).ToArray();
        var (past, common) = _conversations.FindPrefix(slots);
        int reused = Math.Min(common, state.PromptLength - 1); // at least one position is run, for the next token's logits
        if (reused > 0) rows[0] = rows[0].narrow(0, reused, state.PromptLength - reused); // [L − reused, H]
        return new TokenGenerator.CacheReuse(reused > 0 ? past : null, reused, cache => KeepConversation(slots, state.Tokens, cache));
    }

    /// <summary>Keeps the cache of a prompt and its answer: it holds every answer token but the last, which was never fed back.</summary>
    void KeepConversation(PromptSlot[] prompt, IReadOnlyList<int> answer, KvCache cache)
    {
        var slots = new List<PromptSlot>();
        int positions = 0;
        foreach (var slot in prompt.Concat(answer.Select(id => new PromptSlot(id, null))))
        {
            positions += slot.Positions(ImageTokensPerImage);
            if (positions > cache.Length) break;
            slots.Add(slot);
        }
        _conversations!.AddPrefix([.. slots], cache);
    }

    internal ConversationCache? Conversations => _conversations;

    /// <summary>Drops what the conversation cache holds (the trainer calls it: new weights make kept keys and values stale).</summary>
    internal void ClearConversationCache() => _conversations?.Clear();

    void RecordTelemetry(System.Diagnostics.Activity? activity, int inputTokens, int outputTokens, int rows, TimeSpan? firstToken, TimeSpan total)
    {
        MiniGeminiTelemetry.Input.Add(inputTokens);
        MiniGeminiTelemetry.Output.Add(outputTokens);
        activity?.SetTag("gen_ai.usage.input_tokens", inputTokens);
        activity?.SetTag("gen_ai.usage.output_tokens", outputTokens);
        if (firstToken is not { } first) return;
        MiniGeminiTelemetry.FirstToken.Record(first.TotalSeconds);
        double rate = outputTokens > rows && total > first ? (outputTokens - rows) / (total - first).TotalSeconds : double.NaN;
        if (double.IsFinite(rate)) MiniGeminiTelemetry.DecodeRate.Record(rate);
        Log.Generated(_logger, outputTokens, rows, first.TotalSeconds, rate);
    }

    sealed class RowState(StreamingTextDecoder decoder, StopStringMatcher matcher, int promptLength)
    {
        public StreamingTextDecoder Decoder { get; } = decoder;
        public StopStringMatcher Matcher { get; } = matcher;
        public int PromptLength { get; } = promptLength;
        public List<int> Tokens { get; } = [];
        public System.Text.StringBuilder Text { get; } = new();
        public bool Done { get; private set; }
        public FinishReason Reason { get; private set; }

        public void Finish(FinishReason reason)
        {
            Done = true;
            Reason = reason;
        }
    }

    /// <summary>Renders the conversation with the template and tokenizes it with −200 where images go.</summary>
    internal int[] PromptIds(MiniGeminiPrompt prompt)
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

    void ThrowIfDisposed()
    {
        if (_disposed) throw new ObjectDisposedException($"MiniGeminiModel '{Name}'", $"The model '{Name}' was disposed; build a new one.");
    }

    /// <summary>Text is encoded literally, so an <c>&lt;image&gt;</c> in it would silently be no image: refused where it stands.</summary>
    static void RefuseImageText(string text, string where)
    {
        if (text.Contains(ImageSlotTokenizer.ImageToken, StringComparison.Ordinal))
            throw new ArgumentException($"{where} contains the literal text '{ImageSlotTokenizer.ImageToken}'; pass images as ImageInput instead.", "prompt");
    }

    /// <summary>
    /// Image tokens <c>[I, N, H]</c>; with the conversation cache on, pictures seen before are not encoded again, and
    /// <paramref name="hashes"/> receives each picture's key.
    /// </summary>
    Tensor EncodeImageInputs(IReadOnlyList<ImageInput> images, string?[] hashes)
    {
        if (_conversations is null)
        {
            using var tensors = _images.ToTensors(images.Select(Read).ToList());
            using var features = EncodeImages(tensors.Hr);
            return features.Tokens.alias();
        }
        var bytes = images.Select(i => i.Path is { } path ? ImageReader.ReadBytes(path, _model.Views) : i.Bytes).ToList();
        for (int i = 0; i < images.Count; i++) hashes[i] = Convert.ToHexString(System.Security.Cryptography.SHA256.HashData(bytes[i].Span));
        var kept = hashes.Select(h => _conversations.FindImage(h!)).ToArray();
        var missing = Enumerable.Range(0, images.Count).Where(i => kept[i] is null).ToList();
        Tensor? fresh = null;
        if (missing.Count > 0)
        {
            using var tensors = _images.ToTensors(missing.Select(i => ImageReader.Read(bytes[i], images[i].Path ?? images[i].Name, _model.Views)).ToList());
            using var features = EncodeImages(tensors.Hr);
            fresh = features.Tokens.alias(); // [M, N, H]
        }
        var tokens = stack(Enumerable.Range(0, images.Count).Select(i => kept[i] ?? fresh![missing.IndexOf(i)])); // [I, N, H]
        // Added after stacking: adding may evict tokens that this request reads.
        for (int j = 0; j < missing.Count; j++) _conversations.AddImage(hashes[missing[j]]!, fresh![j]);
        return tokens;
    }

    ImageRgb8 Read(ImageInput input) => input.Path is { } path
        ? ImageReader.Read(path, _model.Views)
        : ImageReader.Read(input.Bytes, input.Name, _model.Views);

    /// <summary>Normalized HR pixels <c>[B, 3, S, S]</c> → image tokens (and the intermediates, for parity checks).</summary>
    internal ImageFeatures EncodeImages(Tensor hr, bool keepIntermediates = false) => _model.Encode(hr, keepIntermediates);

    /// <summary>Normalized HR pixels <c>[B, 3, S, S]</c> → image tokens before the projector, <c>[B, N, D]</c>.</summary>
    internal Tensor EncodeUnprojected(Tensor hr) => _model.EncodeUnprojected(hr);

    /// <summary><see cref="EncodeUnprojected"/> with mining's attention scores <c>[B, N, s²]</c> (null without mining).</summary>
    internal (Tensor Mined, Tensor? MiningScores) EncodeWithMiningScores(Tensor hr) => _model.EncodeWithMiningScores(hr);

    /// <summary>Image tokens before the projector <c>[I, N, D]</c> → projected, ready to splice <c>[I, N, H]</c>.</summary>
    internal Tensor ProjectImageTokens(Tensor unprojected) => _model.Projector.call(unprojected);

    /// <summary>Crops normalized at their own size <c>[B, 3, h, w]</c>, for training the HR tower on parts of pictures.</summary>
    internal Tensor PreprocessCrops(IReadOnlyList<ImageInput> crops) => _images.NormalizeAsIs(crops.Select(Read).ToList());

    /// <summary>
    /// The fused ConvNeXt map of each crop, its maximum over the positions per channel, <c>[B, Da]</c>: a detail a few
    /// features wide is what a channel fires on, and an average would dilute it in the crop's background.
    /// </summary>
    internal Tensor EncodeHrPooled(Tensor crops)
    {
        using var scope = NewDisposeScope();
        return EncodeHrFused(crops).amax([2, 3]).MoveToOuterDisposeScope(); // [B, Da]
    }

    /// <summary>The fused ConvNeXt map of each crop, <c>[B, Da, h/4, w/4]</c>.</summary>
    internal Tensor EncodeHrFused(Tensor crops) => _model.EncodeHrFused(crops);

    /// <summary>One row's ids with image slots → embeddings <c>[L, H]</c> (see <see cref="MiniGeminiForCausalLM.EmbedInputs"/>).</summary>
    internal Tensor Splice(IReadOnlyList<int> ids, Tensor? imageTokens) => _model.Splice(ids, imageTokens);

    /// <summary>Waits for the call in progress, if any, to end, then frees the model's native memory.</summary>
    public async ValueTask DisposeAsync()
    {
        if (_disposed) return;
        await _gate.WaitAsync().ConfigureAwait(false);
        Dispose();
    }

    /// <summary>Frees the model's native memory. Calls in progress must have ended (<see cref="DisposeAsync"/> waits for them).</summary>
    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        _conversations?.Dispose();
        _model.Dispose();
        _gate.Dispose();
    }
}
