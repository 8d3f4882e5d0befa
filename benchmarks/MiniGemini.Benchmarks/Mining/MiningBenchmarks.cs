using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Engines;
using BenchmarkDotNet.Jobs;
using static TorchSharp.torch;

namespace MiniGemini.Benchmarks.Mining;

/// <summary>
/// Patch info mining at MGM-7B size on the CPU in float32: MGM's literal formulation (the baseline) against the fast
/// rewrite, both starting from the fused NCHW HR map the ConvNeXt fusion hands over. Each case runs in its own process,
/// which saves its peak resident memory for the native-memory columns.
/// </summary>
[Config(typeof(Config))]
[MemoryDiagnoser]
public class MiningBenchmarks
{
    sealed class Config : ManualConfig
    {
        public Config()
        {
            // Monitoring: one call per iteration, no pilot stage; one call of the reference at HD size is long enough to
            // time on its own.
            AddJob(Job.Default.WithStrategy(RunStrategy.Monitoring).WithLaunchCount(1).WithWarmupCount(1).WithIterationCount(6));
            AddColumn(new NativeMemoryColumn(aboveSetup: false), new NativeMemoryColumn(aboveSetup: true));
        }
    }

    MiningProblem? _problem;
    long _baseline;

    [Params(MiningSize.Mgm7B, MiningSize.Hd)]
    public MiningSize Size { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        _problem = MiningProblem.Create(Size, CPU, ScalarType.Float32);
        // The fast path's weight products are folded once per set of weights, like loading them: not part of a call.
        _ = _problem.Mining.Folded;
        GC.Collect();
        NativeMemory.ResetPeak();
        _baseline = NativeMemory.ResidentBytes();
    }

    [Benchmark(Baseline = true)]
    public void Reference() => _problem!.Run(MiningMethod.Reference).Dispose();

    [Benchmark]
    public void Fast() => _problem!.Run(MiningMethod.Fast).Dispose();

    [GlobalCleanup(Target = nameof(Reference))]
    public void ReferenceCleanup() => Cleanup(nameof(Reference));

    [GlobalCleanup(Target = nameof(Fast))]
    public void FastCleanup() => Cleanup(nameof(Fast));

    void Cleanup(string method)
    {
        NativeMemory.Save(method, Size, _baseline, NativeMemory.PeakBytes());
        _problem?.Dispose();
    }
}
