using System.Diagnostics;
using System.Runtime.ExceptionServices;

namespace MiniGemini.Modeling;

/// <summary>
/// Runs the parts of one decode-step loop (<see cref="RowLinear"/>, <see cref="OneQueryAttention"/>) on the calling
/// thread and resident worker threads that keep spinning for a short while after each job. A decoded token makes
/// about a hundred such calls, a few hundred microseconds apart; a thread-pool worker that went to sleep in between
/// took 0.2–0.9 ms to start again on a virtual machine (a halted virtual CPU waits for its host), so the calling
/// thread ran alone for that long in every call.
/// </summary>
internal static class DecodeThreads
{
    /// <summary>How long a worker spins for the next job before it sleeps.</summary>
    static readonly long SpinTicks = Stopwatch.Frequency / 500; // 2 ms

    static readonly object Gate = new();
    static readonly List<Thread> Workers = [];
    static readonly SemaphoreSlim Wake = new(0);
    static Job? _latest;
    static int _sleeping;

    /// <summary>
    /// <paramref name="body"/>(0 … <paramref name="parts"/> − 1) on up to <paramref name="threads"/> threads (the calling
    /// one included; as many as parts by default), each taking the next part when it is done with one; returns when all
    /// are done and rethrows the first exception. A second caller while one runs gets the thread pool instead.
    /// </summary>
    public static void Run(int parts, Action<int> body, int threads = int.MaxValue)
    {
        threads = Math.Min(threads, parts);
        if (threads <= 1)
        {
            for (int part = 0; part < parts; part++) body(part);
            return;
        }
        if (!Monitor.TryEnter(Gate))
        {
            Parallel.For(0, parts, new ParallelOptions { MaxDegreeOfParallelism = threads }, body);
            return;
        }
        try
        {
            while (Workers.Count < threads - 1) Start();
            var job = new Job(body, parts, workers: threads - 1);
            Volatile.Write(ref _latest, job);
            Interlocked.MemoryBarrier(); // the job is visible before sleepers are counted (see Loop)
            int sleeping = Volatile.Read(ref _sleeping);
            if (sleeping > 0) Wake.Release(sleeping);
            job.Work();
            while (Volatile.Read(ref job.Pending) > 0) Thread.SpinWait(8);
            if (job.Failure is { } failure) ExceptionDispatchInfo.Throw(failure);
        }
        finally
        {
            Monitor.Exit(Gate);
        }
    }

    static void Start()
    {
        var worker = new Thread(Loop) { IsBackground = true, Name = $"MiniGemini decode {Workers.Count + 1}" };
        Workers.Add(worker);
        worker.Start();
    }

    /// <summary>A worker: takes parts of each new job; spins between jobs, sleeps after <see cref="SpinTicks"/>.</summary>
    static void Loop()
    {
        Job? done = Volatile.Read(ref _latest);
        long idleSince = Stopwatch.GetTimestamp();
        while (true)
        {
            var job = Volatile.Read(ref _latest);
            if (job != done && job is not null)
            {
                if (job.Join()) job.Work();
                done = job;
                idleSince = Stopwatch.GetTimestamp();
            }
            else if (Stopwatch.GetTimestamp() - idleSince < SpinTicks)
                Thread.SpinWait(8);
            else
            {
                Interlocked.Increment(ref _sleeping);
                if (Volatile.Read(ref _latest) == done) Wake.Wait(); // a job published after the count above releases it
                Interlocked.Decrement(ref _sleeping);
                idleSince = Stopwatch.GetTimestamp();
            }
        }
    }

    /// <summary>One call's parts, taken one at a time by the caller and the first <c>workers</c> workers to join.</summary>
    sealed class Job(Action<int> body, int parts, int workers)
    {
        readonly int _parts = parts;
        int _next, _joined;
        public int Pending = parts;
        public Exception? Failure;

        /// <summary>Whether a worker may take parts (workers started for a wider call stay out of a narrower one).</summary>
        public bool Join() => Interlocked.Increment(ref _joined) <= workers;

        public void Work()
        {
            int part;
            while ((part = Interlocked.Increment(ref _next) - 1) < _parts)
            {
                try { body(part); }
                catch (Exception e) { Interlocked.CompareExchange(ref Failure, e, null); }
                Interlocked.Decrement(ref Pending);
            }
        }
    }
}
