using System.Collections.Concurrent;
using MiniGemini.Modeling;
using Xunit;

namespace MiniGemini.Tests.Llm;

public sealed class DecodeThreadsTests
{
    /// <summary>Every part runs exactly once per call, over many calls in a row (workers spinning) and after a pause (asleep).</summary>
    [Fact]
    public void Every_part_runs_once_per_call()
    {
        for (int call = 0; call < 500; call++)
        {
            int parts = 1 + call % 4;
            var counts = new int[parts];
            DecodeThreads.Run(parts, part => Interlocked.Increment(ref counts[part]));
            Assert.All(counts, count => Assert.Equal(1, count));
            if (call == 250) Thread.Sleep(50); // longer than the spin: the workers sleep and are woken
        }
    }

    /// <summary>
    /// More parts than threads: each part runs once, on no more threads than asked for, also while more workers than
    /// that spin from a wider call before.
    /// </summary>
    [Fact]
    public void More_parts_than_threads_run_once_each_on_at_most_the_threads_asked_for()
    {
        DecodeThreads.Run(4, _ => { }); // three workers
        for (int call = 0; call < 200; call++)
        {
            var counts = new int[16];
            var threads = new ConcurrentDictionary<int, bool>();
            DecodeThreads.Run(16, part =>
            {
                Interlocked.Increment(ref counts[part]);
                threads[Environment.CurrentManagedThreadId] = true;
                Thread.SpinWait(500);
            }, threads: 2);
            Assert.All(counts, count => Assert.Equal(1, count));
            Assert.InRange(threads.Count, 1, 2);
        }
    }

    [Fact]
    public void A_failing_part_is_rethrown_after_the_others_finish()
    {
        int finished = 0;
        var error = Assert.Throws<InvalidOperationException>(() => DecodeThreads.Run(3, part =>
        {
            if (part == 1) throw new InvalidOperationException("part 1");
            Interlocked.Increment(ref finished);
        }));
        Assert.Equal("part 1", error.Message);
        Assert.Equal(2, finished);
        var counts = new int[2];
        DecodeThreads.Run(2, part => counts[part]++); // still usable
        Assert.Equal([1, 1], counts);
    }

    /// <summary>Callers on several threads at once all get their parts run (one by the workers, the others by the pool).</summary>
    [Fact]
    public void Concurrent_callers_all_complete()
    {
        var totals = new int[4];
        Parallel.For(0, 4, caller =>
        {
            for (int call = 0; call < 200; call++)
                DecodeThreads.Run(2, _ => Interlocked.Increment(ref totals[caller]));
        });
        Assert.All(totals, total => Assert.Equal(400, total));
    }
}
