using System.Net;
using MiniGemini.Checkpoints;

namespace MiniGemini;

/// <summary>
/// The root of every exception this library throws for a failure of its own: a model that cannot be loaded
/// (<see cref="ModelLoadException"/>), an image that cannot be used (<see cref="InvalidImageException"/>), a request
/// longer than the context (<see cref="ContextLengthExceededException"/>), an image generator that failed
/// (<see cref="ImageGenerationException"/>) and training that cannot go on (<see cref="MiniGeminiTrainingException"/>).
/// Each message names what is at fault. Argument checks (<see cref="ArgumentException"/> and its kin), missing files
/// (<see cref="FileNotFoundException"/>), cancellation (<see cref="OperationCanceledException"/>) and use after dispose
/// (<see cref="ObjectDisposedException"/>) are .NET's own exceptions and do not derive from it.
/// </summary>
public abstract class MiniGeminiException : Exception
{
    /// <summary>Creates the exception.</summary>
    /// <param name="message">What is wrong; names the file, key, input or setting at fault.</param>
    /// <param name="inner">The underlying error, if any.</param>
    protected MiniGeminiException(string message, Exception? inner = null) : base(message, inner) { }
}

/// <summary>
/// A model, or a part of one, could not be loaded: a checkpoint file that is malformed or does not fit the module it
/// is loaded into (missing, unexpected or mis-shaped keys), a <c>config.json</c> or <c>generation_config.json</c> that
/// is missing, malformed or out of bounds, a vision tower that was not found, a tokenizer file that is missing or
/// unsupported, or builder settings and parts that do not fit together. The message names the file and the tensor,
/// key or setting at fault; the properties carry the same facts where there are any.
/// </summary>
public sealed class ModelLoadException : MiniGeminiException
{
    /// <summary>Creates the exception.</summary>
    /// <param name="message">What is wrong; names the file and the tensor or setting at fault.</param>
    /// <param name="filePath">The file or folder at fault, when one is.</param>
    /// <param name="tensorName">The checkpoint tensor at fault, when one is.</param>
    /// <param name="inner">The underlying error, if any.</param>
    public ModelLoadException(string message, string? filePath = null, string? tensorName = null, Exception? inner = null)
        : base(message, inner)
    {
        FilePath = filePath;
        TensorName = tensorName;
    }

    ModelLoadException(string message, string? filePath, string? tensorName, string? configKey, LoadReport? report,
        string? tower, IReadOnlyList<string>? lookedAt, Exception? inner)
        : this(message, filePath, tensorName, inner)
    {
        ConfigKey = configKey;
        Report = report;
        Tower = tower;
        LookedAt = lookedAt;
    }

    /// <summary>A config file (<c>config.json</c>, <c>generation_config.json</c>, a tower's config) is missing, malformed, lacks a required field or holds a value out of bounds.</summary>
    /// <param name="message">What is wrong; names the file and the field at fault.</param>
    /// <param name="filePath">The config file at fault.</param>
    /// <param name="key">The field at fault, when one is; becomes <see cref="ConfigKey"/>.</param>
    /// <param name="inner">The underlying error, if any.</param>
    public static ModelLoadException Config(string message, string? filePath = null, string? key = null, Exception? inner = null) =>
        new(message, filePath, null, key, null, null, null, inner);

    /// <summary>A well-formed checkpoint does not fit the module it is loaded into: keys missing, unexpected or of the wrong shape or type.</summary>
    /// <param name="message">What does not fit; lists the keys.</param>
    /// <param name="report">Every missing, unexpected and mis-shaped key; its first problem key becomes <see cref="TensorName"/>.</param>
    /// <param name="filePath">The checkpoint at fault.</param>
    public static ModelLoadException Mismatch(string message, LoadReport report, string? filePath) =>
        new(message, filePath, report.FirstProblemKey, null, report, null, null, null);

    /// <summary>A vision tower that could not be found; the message names every place that was looked at.</summary>
    /// <param name="tower">Which tower: "CLIP" or "ConvNeXt".</param>
    /// <param name="configured">The path the config or the builder gave; becomes <see cref="FilePath"/>.</param>
    /// <param name="lookedAt">Every path tried, in order.</param>
    public static ModelLoadException TowerNotFound(string tower, string configured, IReadOnlyList<string> lookedAt) =>
        new($"The {tower} tower '{configured}' was not found. Looked at:\n  " + string.Join("\n  ", lookedAt) +
            "\nSet its path in the builder (WithVisionTower / WithAuxVisionTower) or add a search root (WithTowerSearchRoots).",
            configured, null, null, null, tower, lookedAt, null);

    /// <summary>The file or folder at fault (for a tower that was not found, the path it was configured with); null when the problem is not tied to one.</summary>
    public string? FilePath { get; }

    /// <summary>The checkpoint tensor at fault (for a mismatch, the first key of <see cref="Report"/>); null when no tensor is.</summary>
    public string? TensorName { get; }

    /// <summary>The config field at fault (e.g. <c>hidden_size</c>); null unless a config file is.</summary>
    public string? ConfigKey { get; }

    /// <summary>For a checkpoint that does not fit its module: every missing, unexpected and mis-shaped key; null otherwise.</summary>
    public LoadReport? Report { get; }

    /// <summary>For a vision tower that was not found: which one, "CLIP" or "ConvNeXt"; null otherwise.</summary>
    public string? Tower { get; }

    /// <summary>For a vision tower that was not found: every path tried, in order; null otherwise.</summary>
    public IReadOnlyList<string>? LookedAt { get; }
}

/// <summary>Why an image input could not be used.</summary>
public enum InvalidImageReason
{
    /// <summary>The input is not an image that can be read: empty, truncated, corrupt, in a format no decoder reads, or not a regular file.</summary>
    Unreadable,

    /// <summary>The image's header declares more pixels than <see cref="ImagePreprocessOptions.MaxImagePixels"/> allows; nothing was decoded.</summary>
    TooLarge,
}

/// <summary>
/// An image input could not be used: it is empty, truncated, not an image, in a format no decoder reads, or its
/// content is corrupt (<see cref="InvalidImageReason.Unreadable"/>); or its header declares more pixels than
/// <see cref="ImagePreprocessOptions.MaxImagePixels"/> allows (<see cref="InvalidImageReason.TooLarge"/>, thrown after
/// reading only the header, before any pixel data is decoded or allocated). The message names the input (a file path
/// or the name the caller gave).
/// </summary>
public sealed class InvalidImageException : MiniGeminiException
{
    /// <summary>Creates the exception for an input that cannot be read (<see cref="InvalidImageReason.Unreadable"/>).</summary>
    /// <param name="message">What is wrong; starts with the input's name.</param>
    /// <param name="imageName">The file path or caller-given name of the input.</param>
    /// <param name="inner">The decoder's error, if any.</param>
    public InvalidImageException(string message, string imageName, Exception? inner = null)
        : base(message, inner) => ImageName = imageName;

    InvalidImageException(string imageName, int width, int height, long maxPixels)
        : base($"{imageName}: the image is {width}×{height} = {(long)width * height:N0} pixels, over the budget of " +
               $"{maxPixels:N0} pixels (ImagePreprocessOptions.MaxImagePixels); it was not decoded.")
    {
        ImageName = imageName;
        Reason = InvalidImageReason.TooLarge;
        Width = width;
        Height = height;
        MaxImagePixels = maxPixels;
    }

    /// <summary>An image whose header declares more pixels than the budget (<see cref="InvalidImageReason.TooLarge"/>).</summary>
    /// <param name="imageName">The file path or caller-given name of the input.</param>
    /// <param name="width">Width declared by the header.</param>
    /// <param name="height">Height declared by the header.</param>
    /// <param name="maxPixels">The budget it exceeds.</param>
    public static InvalidImageException TooLarge(string imageName, int width, int height, long maxPixels) =>
        new(imageName, width, height, maxPixels);

    /// <summary>The file path or caller-given name of the input at fault.</summary>
    public string ImageName { get; }

    /// <summary>Why the image could not be used.</summary>
    public InvalidImageReason Reason { get; }

    /// <summary>The width declared by the header, for an image over the pixel budget; null otherwise.</summary>
    public int? Width { get; }

    /// <summary>The height declared by the header, for an image over the pixel budget; null otherwise.</summary>
    public int? Height { get; }

    /// <summary>The pixel budget in force, for an image over it; null otherwise.</summary>
    public long? MaxImagePixels { get; }
}

/// <summary>
/// A sequence would grow past what the model or its key/value cache can hold (prompt tokens plus new tokens beyond
/// <c>max_position_embeddings</c> or the cache's capacity). Thrown before any work is done.
/// </summary>
public sealed class ContextLengthExceededException : MiniGeminiException
{
    /// <summary>Creates the exception.</summary>
    /// <param name="requested">The sequence length that was asked for.</param>
    /// <param name="limit">The largest length allowed.</param>
    /// <param name="message">What was asked for and which limit it breaks.</param>
    public ContextLengthExceededException(int requested, int limit, string message) : base(message)
    {
        Requested = requested;
        Limit = limit;
    }

    /// <summary>The sequence length that was asked for.</summary>
    public int Requested { get; }

    /// <summary>The largest length allowed.</summary>
    public int Limit { get; }
}

/// <summary>Image generation failed: the server refused the request, kept failing, or answered nonsense; or the generator could not draw the prompt.</summary>
public sealed class ImageGenerationException : MiniGeminiException
{
    /// <summary>Creates the exception.</summary>
    /// <param name="message">What failed.</param>
    /// <param name="statusCode">The last HTTP status, when there was one.</param>
    /// <param name="inner">The underlying error, if any.</param>
    public ImageGenerationException(string message, HttpStatusCode? statusCode = null, Exception? inner = null)
        : base(message, inner) => StatusCode = statusCode;

    /// <summary>The last HTTP status, when there was one.</summary>
    public HttpStatusCode? StatusCode { get; }
}

/// <summary>
/// Training cannot start or continue: options that leave nothing to train, an output folder in the way, a checkpoint
/// or training state that does not fit. A sample that cannot be learned from is a <see cref="TrainingDataException"/>,
/// an evaluation file that cannot be read an <see cref="EvaluationFileException"/>.
/// </summary>
public class MiniGeminiTrainingException : MiniGeminiException
{
    /// <summary>Creates the exception.</summary>
    /// <param name="message">What is wrong; names the stage, folder or file at fault.</param>
    /// <param name="inner">The underlying error, if any.</param>
    public MiniGeminiTrainingException(string message, Exception? inner = null) : base(message, inner) { }
}

/// <summary>A training sample that cannot be learned from; the message names the sample and what is wrong.</summary>
public sealed class TrainingDataException : MiniGeminiTrainingException
{
    /// <summary>Creates the exception.</summary>
    /// <param name="sample">The name of the sample at fault; the message starts with it.</param>
    /// <param name="message">What is wrong with the sample.</param>
    /// <param name="inner">The underlying error, if any.</param>
    public TrainingDataException(string sample, string message, Exception? inner = null) : base($"{sample}: {message}", inner) => Sample = sample;

    /// <summary>The name of the sample at fault.</summary>
    public string Sample { get; }
}

/// <summary>An evaluation file (JSON Lines) that cannot be read: names the file and the 1-based line at fault.</summary>
public sealed class EvaluationFileException : MiniGeminiTrainingException
{
    /// <summary>A problem on one line of a file.</summary>
    /// <param name="path">The file (full path).</param>
    /// <param name="line">The line, counted from 1.</param>
    /// <param name="problem">What is wrong, without the file and line.</param>
    /// <param name="innerException">The underlying error, if any.</param>
    public EvaluationFileException(string path, int line, string problem, Exception? innerException = null)
        : base($"{path}, line {line}: {problem}", innerException)
    {
        Path = path;
        Line = line;
        Problem = problem;
    }

    /// <summary>The file (full path).</summary>
    public string Path { get; }

    /// <summary>The line, counted from 1.</summary>
    public int Line { get; }

    /// <summary>What is wrong, without the file and line.</summary>
    public string Problem { get; }
}
