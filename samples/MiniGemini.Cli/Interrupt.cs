namespace MiniGemini.Cli;

/// <summary>
/// Turns the first Ctrl+C (SIGINT) into a cancellation the commands observe, so generation stops between tokens and the
/// program exits cleanly with 130; a second Ctrl+C ends the process at once.
/// </summary>
sealed class Interrupt : IDisposable
{
    public const int ExitCode = 130;

    readonly CancellationTokenSource _cts = new();

    public Interrupt() => Console.CancelKeyPress += OnCancelKeyPress;

    public CancellationToken Token => _cts.Token;

    void OnCancelKeyPress(object? sender, ConsoleCancelEventArgs e)
    {
        if (_cts.IsCancellationRequested) return;
        e.Cancel = true;
        // Not Cancel(): its callbacks would run the commands' unwinding, up to Dispose below, on the signal's own
        // thread, which then waits on itself to unregister this handler.
        _ = _cts.CancelAsync();
    }

    public void Dispose()
    {
        Console.CancelKeyPress -= OnCancelKeyPress;
        _cts.Dispose();
    }
}
