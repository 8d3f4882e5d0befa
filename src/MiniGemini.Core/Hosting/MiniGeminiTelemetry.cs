using System.Diagnostics;
using System.Diagnostics.Metrics;

namespace MiniGemini.Hosting;

/// <summary>
/// The names under which the library reports traces and metrics: listen with OpenTelemetry's
/// <c>AddSource(MiniGeminiTelemetry.Name)</c> and <c>AddMeter(MiniGeminiTelemetry.Name)</c>, or any
/// <see cref="ActivityListener"/> / <see cref="MeterListener"/>.
/// </summary>
/// <remarks>
/// Activities: <c>load</c> (one model build; tag <c>minigemini.model</c>) and <c>generate</c> (one request; tags
/// <c>gen_ai.request.model</c>, <c>gen_ai.usage.input_tokens</c>, <c>gen_ai.usage.output_tokens</c>,
/// <c>minigemini.images</c>). Instruments: <see cref="LoadDuration"/>, <see cref="InputTokens"/>,
/// <see cref="OutputTokens"/>, <see cref="TimeToFirstToken"/>, <see cref="TokensPerSecond"/>.
/// </remarks>
public static class MiniGeminiTelemetry
{
    /// <summary>The name of the <see cref="ActivitySource"/> and of the <see cref="Meter"/>: the package's.</summary>
    public const string Name = "MiniGemini.Core";

    /// <summary>Histogram <c>minigemini.load.duration</c> (s): time to build a model.</summary>
    public const string LoadDuration = "minigemini.load.duration";
    /// <summary>Counter <c>minigemini.tokens.input</c>: prompt positions (image tokens included) of each request.</summary>
    public const string InputTokens = "minigemini.tokens.input";
    /// <summary>Counter <c>minigemini.tokens.output</c>: tokens generated.</summary>
    public const string OutputTokens = "minigemini.tokens.output";
    /// <summary>Histogram <c>minigemini.time_to_first_token</c> (s): from the request's start to its first new token.</summary>
    public const string TimeToFirstToken = "minigemini.time_to_first_token";
    /// <summary>Histogram <c>minigemini.decode.tokens_per_second</c>: new tokens per second after the first, per request.</summary>
    public const string TokensPerSecond = "minigemini.decode.tokens_per_second";

    static readonly string? Version = typeof(MiniGeminiTelemetry).Assembly.GetName().Version?.ToString();
    internal static readonly ActivitySource Source = new(Name, Version);
    static readonly Meter Meter = new(Name, Version);
    internal static readonly Histogram<double> LoadSeconds = Meter.CreateHistogram<double>(LoadDuration, "s", "Time to build a model.");
    internal static readonly Counter<long> Input = Meter.CreateCounter<long>(InputTokens, "{token}", "Prompt positions, image tokens included.");
    internal static readonly Counter<long> Output = Meter.CreateCounter<long>(OutputTokens, "{token}", "Tokens generated.");
    internal static readonly Histogram<double> FirstToken = Meter.CreateHistogram<double>(TimeToFirstToken, "s", "Time from a request's start to its first new token.");
    internal static readonly Histogram<double> DecodeRate = Meter.CreateHistogram<double>(TokensPerSecond, "{token}/s", "New tokens per second after the first.");
}
