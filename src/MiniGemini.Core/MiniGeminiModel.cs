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
    readonly Txt2ImgBridge? _imageGenerator;
    readonly ILogger _logger;
    readonly SemaphoreSlim _gate = new(1, 1);
    readonly ConversationCache? _conversations;
    bool _disposed;
    bool _stepFailureLogged;
    bool _miningFailureLogged;

    internal MiniGeminiModel(string name, MiniGeminiForCausalLM model, MiniGeminiTokenizer tokenizer,
        ConversationTemplate template, GenerationDefaults defaults, ModelPrecision precision, Txt2ImgBridge? imageGenerator,
        ILogger? logger, long conversationCacheBytes = 0)
    {
        Name = name;
        _model = model;
        Processor = new MiniGeminiProcessor(tokenizer, template, model.Views, model.TokensPerImage);
        Defaults = defaults;
        Precision = precision;
        _imageGenerator = imageGenerator;
        _logger = logger ?? NullLogger.Instance;
        if (conversationCacheBytes > 0) _conversations = new ConversationCache(conversationCacheBytes, model.TokensPerImage);
    }

    /// <summary>The model's name (its folder name).</summary>
    public string Name { get; }

    /// <summary>The model's configuration, after builder overrides.</summary>
    public MgmConfig Config => _model.MgmConfig;

    /// <summary>Images and conversations into pixels and ids: image preprocessing, tokenizer, template and image slots.</summary>
    public MiniGeminiProcessor Processor { get; }

    /// <summary>The tokenizer.</summary>
    public MiniGeminiTokenizer Tokenizer => Processor.Tokenizer;

    /// <summary>The conversation template prompts are rendered with.</summary>
    public ConversationTemplate Template => Processor.Template;

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
        return Processor.CountPositions(Processor.Tokenize(prompt));
    }

    /// <summary>The preprocessing the model applies to images.</summary>
    public ImagePreprocessOptions ImageOptions => _model.Views;

    internal Device TorchDevice => _model.Device;

    /// <summary>The module tree: towers, mining, projector and LLM under their checkpoint keys.</summary>
    internal MiniGeminiForCausalLM Module => _model;

    /// <summary>The folder the model was loaded from, and the CLIP tower folder that gave its architecture (saving copies their configs).</summary>
    internal (string ModelFolder, string? ClipFolder)? Source { get; init; }

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
        foreach (var prompt in prompts) Processor.RefuseOverlong(prompt, budget, generation.MaxNewTokens, ContextLength);
        var ids = prompts.Select(Processor.Tokenize).ToList();
        foreach (var row in ids)
        {
            int positions = Processor.CountPositions(row);
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
        using var _ = inference_mode();
        using var scope = NewDisposeScope();
        var hashes = new string?[images.Count];
        var imageTokens = images.Count == 0 ? null : EncodeImageInputs(images, hashes);
        var rows = _model.SpliceRows(ids, imageTokens);                                          // [L_b, H] each
        var answers = new AnswerRows(Tokenizer, [.. Template.StopStrings, .. generation.StopStrings], rows.Select(r => (int)r.shape[0]));
        var reuse = ids.Count == 1 ? Reuse(ids[0], hashes, answers, rows) : null;
        var (embeds, mask) = MiniGeminiForCausalLM.LeftPad(rows);
        activity?.SetTag("minigemini.cached_positions", reuse?.Length ?? 0);
        Log.Generating(_logger, rows.Count, embeds.shape[1], images.Count);

        foreach (var step in TokenGenerator.Generate(_model, embeds, mask, generation, cancellationToken, reuse))
        {
            firstToken ??= clock.Elapsed;
            if (answers.Push(step, onDelta)) break;
        }
        var finished = answers.Finish(onDelta);
        RecordTelemetry(activity, finished.Sum(a => a.PromptLength), answers.Generated, rows.Count, firstToken, clock.Elapsed);
        if (!_stepFailureLogged && _model.CompiledStepFailure is { } failure)
        {
            _stepFailureLogged = true;
            Log.CompiledDecodeStepFailed(_logger, Name, failure.Message);
        }
        if (!_miningFailureLogged && _model.Mining?.CompiledMiningFailure is { } miningFailure)
        {
            _miningFailureLogged = true;
            Log.CompiledMiningFailed(_logger, Name, miningFailure.Message);
        }
        return finished.Select((answer, b) => new MiniGeminiResponse
        {
            Text = answer.Text.Trim(),
            TokenIds = answer.TokenIds,
            PromptTokens = answer.PromptLength,
            CachedPromptTokens = reuse?.Length ?? 0,
            FinishReason = answer.FinishReason,
            ImagePrompt = prompts[b].GenerateImage ? ImageCaption.Extract(answer.Text) : null,
        }).ToList();
    }

    /// <summary>
    /// For a single prompt, with the conversation cache on: the kept keys and values of its longest prefix seen before
    /// (the row's embeddings are cut to the positions after it), and where the cache goes when the answer is done.
    /// </summary>
    TokenGenerator.CacheReuse? Reuse(int[] ids, string?[] imageHashes, AnswerRows answers, List<Tensor> rows)
    {
        if (_conversations is null) return null;
        int image = 0;
        var slots = ids.Select(id => id == ImageSlotTokenizer.ImageTokenIndex ? new PromptSlot(id, imageHashes[image++]) : new PromptSlot(id, null)).ToArray();
        var (past, common) = _conversations.FindPrefix(slots);
        int length = answers.PromptLengthOf(0);
        int reused = Math.Min(common, length - 1); // at least one position is run, for the next token's logits
        if (reused > 0) rows[0] = rows[0].narrow(0, reused, length - reused); // [L − reused, H]
        return new TokenGenerator.CacheReuse(reused > 0 ? past : null, reused, cache => KeepConversation(slots, answers.TokensOf(0), cache));
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

    void ThrowIfDisposed()
    {
        if (_disposed) throw new ObjectDisposedException($"MiniGeminiModel '{Name}'", $"The model '{Name}' was disposed; build a new one.");
    }

    /// <summary>
    /// Image tokens <c>[I, N, H]</c>; with the conversation cache on, pictures seen before are not encoded again, and
    /// <paramref name="hashes"/> receives each picture's key.
    /// </summary>
    Tensor EncodeImageInputs(IReadOnlyList<ImageInput> images, string?[] hashes)
    {
        if (_conversations is null)
        {
            using var hr = Processor.PreprocessImages(images);                                  // [I, 3, S, S]
            return _model.GetImageFeatures(hr);                                                  // [I, N, H]
        }
        var bytes = images.Select(Processor.BytesOf).ToList();
        for (int i = 0; i < images.Count; i++) hashes[i] = Convert.ToHexString(System.Security.Cryptography.SHA256.HashData(bytes[i].Span));
        var kept = hashes.Select(h => _conversations.FindImage(h!)).ToArray();
        var missing = Enumerable.Range(0, images.Count).Where(i => kept[i] is null).ToList();
        Tensor? fresh = null;
        if (missing.Count > 0)
        {
            using var hr = Processor.Preprocess(missing.Select(i => Processor.Decode(bytes[i], images[i])).ToList()); // [M, 3, S, S]
            fresh = _model.GetImageFeatures(hr);                                                 // [M, N, H]
        }
        var tokens = stack(Enumerable.Range(0, images.Count).Select(i => kept[i] ?? fresh![missing.IndexOf(i)])); // [I, N, H]
        // Added after stacking: adding may evict tokens that this request reads.
        for (int j = 0; j < missing.Count; j++) _conversations.AddImage(hashes[missing[j]]!, fresh![j]);
        return tokens;
    }

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
