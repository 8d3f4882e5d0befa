using Microsoft.Extensions.Logging;

namespace MiniGemini.Cli;

/// <summary>The library's diagnostics on stderr, for <c>--verbose</c>.</summary>
sealed class StderrLoggerFactory : ILoggerFactory
{
    public ILogger CreateLogger(string categoryName) => new StderrLogger();

    public void AddProvider(ILoggerProvider provider) { }

    public void Dispose() { }

    sealed class StderrLogger : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => logLevel >= LogLevel.Debug;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            if (!IsEnabled(logLevel)) return;
            Console.Error.WriteLine($"[{logLevel.ToString().ToLowerInvariant()}] {formatter(state, exception)}");
        }
    }
}
