using System.Collections.Concurrent;
using System.Diagnostics;
using System.Diagnostics.Metrics;
using Microsoft.Extensions.Logging;
using MiniGemini.Generation;
using MiniGemini.Hosting;
using MiniGemini.Modeling;
using MiniGemini.Tests.Pipeline;
using Xunit;

namespace MiniGemini.Tests.Hosting;

/// <summary>Traces, metrics and log events of a load and a request, as a listener (e.g. OpenTelemetry) receives them.</summary>
public sealed class TelemetryTests
{
    sealed class CapturingLogger(ConcurrentBag<EventId> events) : ILogger, ILoggerProvider
    {
        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;
        public bool IsEnabled(LogLevel logLevel) => true;
        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) => events.Add(eventId);
        public ILogger CreateLogger(string categoryName) => this;
        public void Dispose() { }
    }

    [Fact]
    public void A_load_and_a_request_report_activities_instruments_and_log_events_with_ids()
    {
        var activities = new ConcurrentBag<Activity>();
        using var activityListener = new ActivityListener
        {
            ShouldListenTo = source => source.Name == MiniGeminiTelemetry.Name,
            Sample = (ref ActivityCreationOptions<ActivityContext> _) => ActivitySamplingResult.AllDataAndRecorded,
            ActivityStopped = activities.Add,
        };
        ActivitySource.AddActivityListener(activityListener);
        var measurements = new ConcurrentDictionary<string, ConcurrentBag<double>>();
        using var meterListener = new MeterListener
        {
            InstrumentPublished = (instrument, listener) =>
            {
                if (instrument.Meter.Name == MiniGeminiTelemetry.Name) listener.EnableMeasurementEvents(instrument);
            },
        };
        meterListener.SetMeasurementEventCallback<long>((i, value, _, _) => measurements.GetOrAdd(i.Name, _ => []).Add(value));
        meterListener.SetMeasurementEventCallback<double>((i, value, _, _) => measurements.GetOrAdd(i.Name, _ => []).Add(value));
        meterListener.Start();
        var events = new ConcurrentBag<EventId>();
        using var logging = LoggerFactory.Create(b => b.AddProvider(new CapturingLogger(events)).SetMinimumLevel(LogLevel.Debug));

        using var model = MiniGeminiBuilder.FromPretrained(TinyModelFixture.ModelFolder).WithLogger(logging).Build();
        var response = model.Generate(MiniGeminiPrompt.Ask("Describe the picture.", ImageInput.FromFile(TinyModelFixture.ImagePath)),
            new GenerationOptions { MaxNewTokens = 6 });

        Assert.Contains(activities, a => a.OperationName == "load" && (string?)a.GetTagItem("minigemini.model") == TinyModelFixture.ModelFolder);
        // Other tests may generate at the same time: ours is the one with our prompt's and answer's token counts.
        Assert.Contains(activities, a => a.OperationName == "generate" && (string?)a.GetTagItem("gen_ai.request.model") == model.Name
            && (int?)a.GetTagItem("gen_ai.usage.input_tokens") == response.PromptTokens && (int?)a.GetTagItem("gen_ai.usage.output_tokens") == response.TokenIds.Count
            && (int?)a.GetTagItem("minigemini.images") == 1);
        Assert.Contains((double)response.PromptTokens, measurements[MiniGeminiTelemetry.InputTokens]);
        Assert.Contains((double)response.TokenIds.Count, measurements[MiniGeminiTelemetry.OutputTokens]);
        foreach (var name in new[] { MiniGeminiTelemetry.LoadDuration, MiniGeminiTelemetry.TimeToFirstToken, MiniGeminiTelemetry.TokensPerSecond })
            Assert.True(measurements.TryGetValue(name, out var values) && values.Any(v => v > 0), $"no positive {name} was recorded");
        var ids = events.Select(e => (e.Id, e.Name)).ToHashSet();
        Assert.Contains((100, "LoadingStage"), ids);
        Assert.Contains((101, "Loaded"), ids);
        Assert.Contains((200, "Generating"), ids);
        Assert.Contains((201, "Generated"), ids);
    }

    /// <summary>A compiled decode step that fails is replaced by the eager one, the answer comes, and the log says so once.</summary>
    [Fact]
    public void A_failing_compiled_decode_step_is_logged_once_as_a_warning()
    {
        var events = new ConcurrentBag<EventId>();
        using var logging = LoggerFactory.Create(b => b.AddProvider(new CapturingLogger(events)).SetMinimumLevel(LogLevel.Debug));
        using var model = MiniGeminiBuilder.FromPretrained(TinyModelFixture.ModelFolder).WithCompiledDecodeStep().WithLogger(logging).Build();
        model.Module.UseCompiledStep(MiniGemini.Tests.Llm.CompiledDecodeStepTests.Failing(model.Module));
        var prompt = MiniGeminiPrompt.Ask("Describe the picture.", ImageInput.FromFile(TinyModelFixture.ImagePath));
        var options = new GenerationOptions { MaxNewTokens = 4, EosTokenIds = [] };
        Assert.Equal(4, model.Generate(prompt, options).CompletionTokens);
        Assert.Equal(4, model.Generate(prompt, options).CompletionTokens);
        Assert.Single(events, e => e.Id == 202 && e.Name == "CompiledDecodeStepFailed");
    }

    /// <summary>Compiled mining that fails is replaced by the operations op by op, the answer comes, and the log says so once.</summary>
    [Fact]
    public void A_failing_compiled_mining_is_logged_once_as_a_warning()
    {
        var events = new ConcurrentBag<EventId>();
        using var logging = LoggerFactory.Create(b => b.AddProvider(new CapturingLogger(events)).SetMinimumLevel(LogLevel.Debug));
        using var model = MiniGeminiBuilder.FromPretrained(TinyModelFixture.ModelFolder).WithLogger(logging).Build();
        var mining = model.Module.Mining!;
        mining.Backend = RegionBackend.CompiledTensorOps;
        mining.UseCompiledMining(MiniGemini.Tests.Mining.FastPathTests.Failing());
        var options = new GenerationOptions { MaxNewTokens = 4, EosTokenIds = [] };
        foreach (var question in new[] { "Describe the picture.", "What is in the picture?" })
            Assert.Equal(4, model.Generate(MiniGeminiPrompt.Ask(question, ImageInput.FromFile(TinyModelFixture.ImagePath)), options).CompletionTokens);
        Assert.Single(events, e => e.Id == 203 && e.Name == "CompiledMiningFailed");
    }
}
