namespace MiniGemini.Cli;

/// <summary>
/// Shows model loading on stderr: a bar redrawn in place when stderr is a terminal, one plain line per stage when it is
/// redirected (logs stay readable). Reports arrive synchronously on the loading thread; after Ctrl+C has abandoned the
/// load they are dropped.
/// </summary>
sealed class LoadProgressBar(bool interactive, CancellationToken abandoned) : IProgress<LoadProgress>
{
    const int Width = 24;
    int _lastLength;

    public void Report(LoadProgress value)
    {
        if (abandoned.IsCancellationRequested) return;
        bool done = value.Completed >= value.Total;
        if (!interactive)
        {
            // One line per stage: the reports of bytes read within a stage would flood a log.
            if (value.BytesTotal == 0) Console.Error.WriteLine(done ? "Loading: done." : $"Loading: [{value.Completed + 1}/{value.Total}] {value.Stage}");
            return;
        }
        int filled = (int)Math.Round(value.Fraction * Width);
        var bytes = value.BytesTotal > 0 && !done ? $" {Megabytes(value.BytesRead)}/{Megabytes(value.BytesTotal)} MB" : "";
        var line = $"Loading [{new string('#', filled)}{new string('.', Width - filled)}] {value.Completed}/{value.Total} {(done ? "done" : value.Stage)}{bytes}";
        // Pad over the previous, possibly longer, line before returning to column 0.
        Console.Error.Write("\r" + line.PadRight(_lastLength));
        _lastLength = line.Length;
        if (done) EndLine();
    }

    static string Megabytes(long bytes) => (bytes / 1e6).ToString(bytes < 10_000_000 ? "F1" : "F0", System.Globalization.CultureInfo.InvariantCulture);

    /// <summary>Leaves the bar's line (after the last stage, or when loading fails or is cancelled).</summary>
    public void EndLine()
    {
        if (_lastLength == 0) return;
        Console.Error.WriteLine();
        _lastLength = 0;
    }
}
