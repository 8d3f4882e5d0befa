using System.Diagnostics.CodeAnalysis;
using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using System.Text.Json.Serialization;
using Microsoft.Extensions.AI;
using MiniGemini.Generation;

namespace MiniGemini;

/// <summary>Parameters of one text-to-image request.</summary>
public sealed record Txt2ImgRequest
{
    /// <summary>MGM's fixed negative prompt (verbatim from its CLI and worker).</summary>
    public const string MgmNegativePrompt =
        "out of frame, lowres, text, error, cropped, worst quality, low quality, jpeg artifacts, ugly, duplicate, morbid, " +
        "mutilated, out of frame, extra fingers, mutated hands, poorly drawn hands, poorly drawn face, mutation, deformed, " +
        "blurry, dehydrated, bad anatomy, bad proportions, extra limbs, cloned face, disfigured, gross proportions, " +
        "malformed limbs, missing arms, missing legs, extra arms, extra legs, fused fingers, too many fingers, long neck, " +
        "username, watermark, signature";

    /// <summary>The diffusion prompt.</summary>
    public required string Prompt { get; init; }
    /// <summary>What to avoid; MGM's negative prompt by default.</summary>
    public string NegativePrompt { get; init; } = MgmNegativePrompt;
    /// <summary>Width in pixels (SDXL's native 1024 by default).</summary>
    public int Width { get; init; } = 1024;
    /// <summary>Height in pixels.</summary>
    public int Height { get; init; } = 1024;
    /// <summary>Sampling steps (diffusers' SDXL default, as MGM uses it: 50).</summary>
    public int Steps { get; init; } = 50;
    /// <summary>Classifier-free guidance scale (diffusers' SDXL default: 5.0).</summary>
    public double GuidanceScale { get; init; } = 5.0;
    /// <summary>Seed; null lets the server choose (−1).</summary>
    public long? Seed { get; init; }

    internal void Validate()
    {
        if (string.IsNullOrWhiteSpace(Prompt)) throw new ArgumentException("The prompt is empty.", nameof(Prompt));
        if (Width is < 64 or > 8192 || Height is < 64 or > 8192)
            throw new ArgumentOutOfRangeException(nameof(Width), $"Image size {Width}x{Height} is outside 64..8192.");
        if (Steps is < 1 or > 1000) throw new ArgumentOutOfRangeException(nameof(Steps), Steps, "Steps must be in 1..1000.");
    }
}

/// <summary>An image produced by a generator.</summary>
/// <param name="Data">Encoded image bytes.</param>
/// <param name="MediaType">e.g. <c>image/png</c>.</param>
/// <param name="Prompt">The prompt it was made from.</param>
/// <param name="Seed">The seed the server reports, when it does.</param>
public sealed record GeneratedImage(ReadOnlyMemory<byte> Data, string MediaType, string Prompt, long? Seed = null);

/// <summary>Settings of a <see cref="Txt2ImgClient"/>.</summary>
public sealed record Txt2ImgClientOptions
{
    /// <summary>The server's base address, e.g. <c>http://127.0.0.1:7860/</c>.</summary>
    public required Uri BaseAddress { get; init; }
    /// <summary>The endpoint path (AUTOMATIC1111/Forge/SD.Next style).</summary>
    public string Path { get; init; } = "sdapi/v1/txt2img";
    /// <summary>Time allowed for one attempt.</summary>
    public TimeSpan Timeout { get; init; } = TimeSpan.FromMinutes(5);
    /// <summary>Retries after a transient failure (timeouts, connection errors, 408/429/5xx).</summary>
    public int MaxRetries { get; init; } = 2;
    /// <summary>Delay before the first retry; doubles for each further one (a Retry-After header wins).</summary>
    public TimeSpan RetryDelay { get; init; } = TimeSpan.FromSeconds(1);
}

/// <summary>
/// A client for the <c>txt2img</c> JSON API that Stable Diffusion web servers share (AUTOMATIC1111, Forge, SD.Next):
/// <c>POST /sdapi/v1/txt2img</c> with prompt, negative prompt, size, steps, guidance and seed; the answer carries
/// base64 images. Transient failures are retried with exponential back-off; anything else is an
/// <see cref="ImageGenerationException"/>. Thread-safe. It is also a Microsoft.Extensions.AI <see cref="IImageGenerator"/>
/// (experimental upstream, MEAI001): the negative prompt, steps, guidance and seed then come from
/// <see cref="ImageGenerationOptions.AdditionalProperties"/> (<c>negative_prompt</c>, <c>steps</c>, <c>guidance_scale</c>,
/// <c>seed</c>), the size from <see cref="ImageGenerationOptions.ImageSize"/>, and the images are returned as data.
/// </summary>
#pragma warning disable MEAI001 // IImageGenerator is experimental upstream; its members below are marked so
public sealed class Txt2ImgClient : IDisposable, IImageGenerator
#pragma warning restore MEAI001
{
    readonly HttpClient _http;
    readonly bool _ownsHttp;
    readonly Txt2ImgClientOptions _options;

    /// <summary>Creates a client; pass an <see cref="HttpClient"/> from IHttpClientFactory to share handlers.</summary>
    public Txt2ImgClient(Txt2ImgClientOptions options, HttpClient? httpClient = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (options.MaxRetries < 0) throw new ArgumentOutOfRangeException(nameof(options), "MaxRetries must not be negative.");
        _options = options;
        _ownsHttp = httpClient is null;
        // Per-attempt timeouts are ours; a caller's HttpClient keeps its own settings.
        _http = httpClient ?? new HttpClient { Timeout = System.Threading.Timeout.InfiniteTimeSpan };
    }

    /// <summary>Generates one image.</summary>
    /// <exception cref="ImageGenerationException">The server refused the request or kept failing.</exception>
    /// <exception cref="OperationCanceledException">The caller cancelled.</exception>
    public async Task<GeneratedImage> GenerateAsync(Txt2ImgRequest request, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(request);
        request.Validate();
        var uri = new Uri(_options.BaseAddress, _options.Path);
        var body = new Payload(request.Prompt, request.NegativePrompt, request.Width, request.Height, request.Steps,
            request.GuidanceScale, request.Seed ?? -1);
        for (int attempt = 0; ; attempt++)
        {
            using var attemptTimeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            attemptTimeout.CancelAfter(_options.Timeout);
            string failure;
            HttpStatusCode? status = null;
            TimeSpan? retryAfter = null;
            Exception? error = null;
            try
            {
                using var response = await _http.PostAsJsonAsync(uri, body, Json, attemptTimeout.Token).ConfigureAwait(false);
                status = response.StatusCode;
                if (response.IsSuccessStatusCode)
                    return await ReadImageAsync(response, request, attemptTimeout.Token).ConfigureAwait(false);
                var text = await response.Content.ReadAsStringAsync(attemptTimeout.Token).ConfigureAwait(false);
                failure = $"{uri} answered {(int)response.StatusCode} {response.ReasonPhrase}: {Snippet(text)}";
                if (!IsTransient(response.StatusCode))
                    throw new ImageGenerationException(failure, response.StatusCode);
                retryAfter = response.Headers.RetryAfter?.Delta;
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                throw;
            }
            catch (OperationCanceledException e)
            {
                failure = $"{uri} did not answer within {_options.Timeout.TotalSeconds:0.#} s.";
                error = e;
            }
            catch (HttpRequestException e)
            {
                failure = $"{uri} could not be reached: {e.Message}";
                error = e;
            }
            if (attempt >= _options.MaxRetries)
                throw new ImageGenerationException(failure + $" Gave up after {attempt + 1} attempts.", status, error);
            var delay = retryAfter ?? _options.RetryDelay * Math.Pow(2, attempt);
            await Task.Delay(delay, cancellationToken).ConfigureAwait(false);
        }
    }

    static async Task<GeneratedImage> ReadImageAsync(HttpResponseMessage response, Txt2ImgRequest request, CancellationToken ct)
    {
        Answer? answer;
        try
        {
            answer = await response.Content.ReadFromJsonAsync<Answer>(Json, ct).ConfigureAwait(false);
        }
        catch (JsonException e)
        {
            throw new ImageGenerationException($"The txt2img answer is not the expected JSON: {e.Message}", response.StatusCode, e);
        }
        var first = answer?.Images?.FirstOrDefault()
            ?? throw new ImageGenerationException("The txt2img answer holds no image.", response.StatusCode);
        // Some servers return a data URI instead of bare base64.
        int comma = first.StartsWith("data:", StringComparison.Ordinal) ? first.IndexOf(',') : -1;
        byte[] data;
        try
        {
            data = Convert.FromBase64String(comma >= 0 ? first[(comma + 1)..] : first);
        }
        catch (FormatException e)
        {
            throw new ImageGenerationException("The txt2img answer's image is not valid base64.", response.StatusCode, e);
        }
        return new GeneratedImage(data, MediaTypeOf(data), request.Prompt, SeedOf(answer?.Info));
    }

    static long? SeedOf(string? info)
    {
        if (string.IsNullOrEmpty(info)) return null;
        try
        {
            using var doc = JsonDocument.Parse(info);
            return doc.RootElement.TryGetProperty("seed", out var seed) && seed.TryGetInt64(out var s) ? s : null;
        }
        catch (JsonException)
        {
            return null;
        }
    }

    static string MediaTypeOf(byte[] data) => data switch
    {
        [0x89, (byte)'P', (byte)'N', (byte)'G', ..] => "image/png",
        [0xFF, 0xD8, ..] => "image/jpeg",
        [(byte)'R', (byte)'I', (byte)'F', (byte)'F', _, _, _, _, (byte)'W', (byte)'E', (byte)'B', (byte)'P', ..] => "image/webp",
        _ => "application/octet-stream",
    };

    static bool IsTransient(HttpStatusCode code) =>
        code is HttpStatusCode.RequestTimeout or HttpStatusCode.TooManyRequests or HttpStatusCode.InternalServerError
            or HttpStatusCode.BadGateway or HttpStatusCode.ServiceUnavailable or HttpStatusCode.GatewayTimeout;

    static string Snippet(string text) => text.Length <= 300 ? text : text[..300] + "…";

    static readonly JsonSerializerOptions Json = new() { PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower };

    sealed record Payload(string Prompt, string NegativePrompt, int Width, int Height, int Steps, double CfgScale, long Seed)
    {
        public int BatchSize => 1;
        public int NIter => 1;
    }

    sealed record Answer(List<string>? Images, string? Info);

    /// <summary>Generates <see cref="ImageGenerationOptions.Count"/> images (one request each) for the prompt.</summary>
    [Experimental("MEAI001")]
    async Task<ImageGenerationResponse> IImageGenerator.GenerateAsync(ImageGenerationRequest request, ImageGenerationOptions? options, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(request);
        var extra = options?.AdditionalProperties;
        T Extra<T>(string key, T fallback) => extra is not null && extra.TryGetValue(key, out var v) && v is not null
            ? (T)Convert.ChangeType(v, typeof(T), System.Globalization.CultureInfo.InvariantCulture) : fallback;
        var defaults = new Txt2ImgRequest { Prompt = request.Prompt ?? "" };
        var txt2img = defaults with
        {
            Width = options?.ImageSize?.Width ?? defaults.Width,
            Height = options?.ImageSize?.Height ?? defaults.Height,
            NegativePrompt = Extra("negative_prompt", defaults.NegativePrompt),
            Steps = Extra("steps", defaults.Steps),
            GuidanceScale = Extra("guidance_scale", defaults.GuidanceScale),
            Seed = extra is not null && extra.ContainsKey("seed") ? Extra<long>("seed", 0) : null,
        };
        var contents = new List<AIContent>();
        for (int i = 0; i < Math.Max(1, options?.Count ?? 1); i++)
        {
            var image = await GenerateAsync(txt2img, cancellationToken).ConfigureAwait(false);
            contents.Add(new DataContent(image.Data, image.MediaType));
        }
        return new ImageGenerationResponse(contents);
    }

    [Experimental("MEAI001")]
    object? IImageGenerator.GetService(Type serviceType, object? serviceKey)
    {
        ArgumentNullException.ThrowIfNull(serviceType);
        return serviceKey is null && serviceType.IsInstanceOfType(this) ? this : null;
    }

    /// <inheritdoc/>
    public void Dispose()
    {
        if (_ownsHttp) _http.Dispose();
    }
}
