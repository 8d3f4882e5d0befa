using Microsoft.Extensions.Logging;

namespace MiniGemini.Hosting;

/// <summary>The library's log events, each with a fixed <see cref="EventId"/> (1xx loading, 2xx generation).</summary>
internal static partial class Log
{
    [LoggerMessage(EventId = 100, EventName = "LoadingStage", Level = LogLevel.Information, Message = "Loading {Stage}")]
    public static partial void LoadingStage(ILogger logger, string stage);

    [LoggerMessage(EventId = 101, EventName = "Loaded", Level = LogLevel.Information,
        Message = "Loaded {Model}: {Family} LLM, template {Template}, {Tokens} tokens per image, {Device} {Precision} in {Seconds:0.00} s.")]
    public static partial void Loaded(ILogger logger, string model, string family, string template, int tokens, string device, string precision, double seconds);

    [LoggerMessage(EventId = 102, EventName = "MappedInSmallPages", Level = LogLevel.Information,
        Message = "{Model}: {SmallGigabytes:0.0} of the {MappedGigabytes:0.0} GB of mapped weights lie in 4 KiB pages, as the page cache holds them, " +
                  "which can make a decode up to 40 % slower than from 2 MiB pages. Copied weights (WithMappedWeights(false)) do not depend on it.")]
    public static partial void MappedInSmallPages(ILogger logger, string model, double smallGigabytes, double mappedGigabytes);

    [LoggerMessage(EventId = 200, EventName = "Generating", Level = LogLevel.Debug, Message = "Generating for {Rows} prompt(s) of up to {Length} positions ({Images} image(s)).")]
    public static partial void Generating(ILogger logger, int rows, long length, int images);

    [LoggerMessage(EventId = 201, EventName = "Generated", Level = LogLevel.Debug,
        Message = "Generated {Tokens} token(s) for {Rows} prompt(s): first after {FirstTokenSeconds:0.000} s, {TokensPerSecond:0.0} tokens/s after it.")]
    public static partial void Generated(ILogger logger, int tokens, int rows, double firstTokenSeconds, double tokensPerSecond);

    [LoggerMessage(EventId = 202, EventName = "CompiledDecodeStepFailed", Level = LogLevel.Warning,
        Message = "The compiled decode step failed; {Model} decodes op by op from now on: {Error}")]
    public static partial void CompiledDecodeStepFailed(ILogger logger, string model, string error);

    [LoggerMessage(EventId = 203, EventName = "CompiledMiningFailed", Level = LogLevel.Warning,
        Message = "The compiled patch info mining failed; {Model} mines op by op from now on: {Error}")]
    public static partial void CompiledMiningFailed(ILogger logger, string model, string error);
}
