using System.Diagnostics;
using MiniGemini.Generation;

namespace MiniGemini.Benchmarks;

/// <summary>
/// <c>soak MODEL_FOLDER [--requests 10000] [--callers 4] [--cancel-every 10] [--image PATH]</c>: many mixed requests
/// (with and without an image, streamed and not, some cancelled mid-generation) from concurrent callers on one model;
/// reports latency percentiles (queueing behind the model's one-at-a-time gate included) and memory. Not part of the test suite (it takes minutes).
/// </summary>
static class SoakConsole
{
    public static int Run(string[] argv)
    {
        var args = new ConsoleArgs(argv);
        if (args.Words.Count != 1) throw new ArgumentException("soak needs the model folder: soak MODEL_FOLDER [--requests N] [--callers N] [--cancel-every N] [--image PATH]");
        int requests = args.Int("requests", 10_000), callers = args.Int("callers", 4), cancelEvery = args.Int("cancel-every", 10);
        using var model = MiniGeminiBuilder.FromPretrained(args.Words[0]).OnDevice("cpu").Build();
        var image = args.Get("image", "") is { Length: > 0 } path ? ImageInput.FromFile(path) : null;
        var options = new GenerationOptions { MaxNewTokens = 8 };

        long rssBefore = Rss();
        var latencies = new System.Collections.Concurrent.ConcurrentBag<double>();
        int cancelled = 0, failed = 0, next = -1;
        var failures = new System.Collections.Concurrent.ConcurrentDictionary<string, int>();
        var clock = Stopwatch.StartNew();
        var workers = Enumerable.Range(0, callers).Select(_ => Task.Run(async () =>
        {
            for (int i; (i = Interlocked.Increment(ref next)) < requests;)
            {
                var prompt = image is not null && i % 2 == 0 ? MiniGeminiPrompt.Ask($"Request {i}: describe it.", image) : MiniGeminiPrompt.Ask($"Request {i}: hello.");
                using var cts = new CancellationTokenSource();
                var started = Stopwatch.GetTimestamp();
                try
                {
                    if (i % 3 == 0)
                    {
                        int deltas = 0;
                        await foreach (var _ in model.GenerateStreamingAsync(prompt, options, cts.Token))
                            if (cancelEvery > 0 && i % cancelEvery == 0 && ++deltas == 2) cts.Cancel();
                    }
                    else
                    {
                        if (cancelEvery > 0 && i % cancelEvery == 0) cts.CancelAfter(TimeSpan.FromMilliseconds(1));
                        await model.GenerateAsync(prompt, options, cts.Token);
                    }
                }
                catch (OperationCanceledException)
                {
                    Interlocked.Increment(ref cancelled);
                }
                catch (Exception e)
                {
                    // A soak reports what failed instead of stopping at it.
                    Interlocked.Increment(ref failed);
                    failures.AddOrUpdate($"{e.GetType().Name}: {e.Message.Split('\n')[0]}", 1, (_, n) => n + 1);
                }
                latencies.Add(Stopwatch.GetElapsedTime(started).TotalMilliseconds);
            }
        })).ToArray();
        Task.WaitAll(workers);
        var sorted = latencies.Order().ToArray();
        double Percentile(double p) => sorted[Math.Min(sorted.Length - 1, (int)(p * sorted.Length))];
        Console.WriteLine($"{requests} requests from {callers} callers in {clock.Elapsed.TotalSeconds:F1} s ({cancelled} cancelled, {failed} failed)");
        foreach (var (message, count) in failures.OrderByDescending(f => f.Value)) Console.WriteLine($"  {count} × {message}");
        Console.WriteLine($"latency p50 {Percentile(0.50):F1} ms, p99 {Percentile(0.99):F1} ms, max {sorted[^1]:F1} ms");
        Console.WriteLine($"RSS {rssBefore >> 20} MiB before, {Rss() >> 20} MiB after");
        return 0;
    }

    static long Rss()
    {
        GC.Collect();
        GC.WaitForPendingFinalizers();
        using var self = Process.GetCurrentProcess();
        return self.WorkingSet64;
    }
}
