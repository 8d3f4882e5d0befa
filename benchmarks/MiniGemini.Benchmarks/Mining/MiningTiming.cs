using System.Diagnostics;
using System.Globalization;
using MiniGemini.Modeling;
using TorchSharp;
using static TorchSharp.torch;

namespace MiniGemini.Benchmarks.Mining;

/// <summary>
/// A plain timing loop of the same comparison for any device (BenchmarkDotNet is awkward on a GPU machine):
/// <c>mining --device cpu|cuda --dtype fp32|bf16|fp16 [--sizes mgm7b,hd] [--warmup N] [--iterations N]
/// [--methods reference,fast,tensorops,compiled]</c> (default reference,fast). Synchronises the device around every call
/// and prints a markdown table with each method's relative error against the reference.
/// </summary>
static class MiningTiming
{
    public static int Run(string[] args)
    {
        var options = new ConsoleArgs(args);
        if (options.Words.Count > 0) throw new ArgumentException($"Unexpected argument '{options.Words[0]}': use --name value.");
        var dtype = options.DType();
        var device = options.Device();
        var sizes = options.Get("sizes", "mgm7b,hd").Split(',')
            .Select(s => Enum.Parse<MiningSize>(s, ignoreCase: true)).ToList();
        var methods = options.Get("methods", "reference,fast").Split(',')
            .Select(s => Enum.Parse<MiningMethod>(s, ignoreCase: true)).ToList();
        int warmup = options.Int("warmup", 3);
        int iterations = options.Int("iterations", 20);

        Console.WriteLine($"device {device}, dtype {dtype}, torch threads {get_num_threads()}, load {LoadAverage()}");
        Console.WriteLine();
        Console.WriteLine("| size | method | mean ms | median ms | min ms | speed-up | max abs err / max abs ref |");
        Console.WriteLine("|---|---|---:|---:|---:|---:|---:|");
        using var _ = inference_mode();
        foreach (var size in sizes)
        {
            using var problem = MiningProblem.Create(size, device, dtype);
            var results = new Dictionary<MiningMethod, (double[] Ms, Tensor Output)>();
            foreach (var method in methods)
            {
                for (int i = 0; i < warmup; i++) Timed(problem, method, device).Output.Dispose();
                var ms = new double[iterations];
                Tensor? last = null;
                for (int i = 0; i < iterations; i++)
                {
                    last?.Dispose();
                    (ms[i], last) = Timed(problem, method, device);
                }
                results[method] = (ms, last!);
            }
            double? baseline = results.TryGetValue(MiningMethod.Reference, out var r) ? Median(r.Ms) : null;
            foreach (var (method, (ms, output)) in results)
            {
                string speedup = baseline is { } b ? $"{b / Median(ms):F1}×" : "–";
                string error = method != MiningMethod.Reference && results.ContainsKey(MiningMethod.Reference)
                    ? RelativeError(results[MiningMethod.Reference].Output, output).ToString("E2", CultureInfo.InvariantCulture) : "–";
                Console.WriteLine($"| {size} | {method} | {ms.Average():F3} | {Median(ms):F3} | {ms.Min():F3} | {speedup} | {error} |");
            }
            if (results.TryGetValue(MiningMethod.TensorOps, out var opByOp) && results.TryGetValue(MiningMethod.Compiled, out var compiled))
                Console.WriteLine($"| {size} | compiled against op by op | | | | | {RelativeError(opByOp.Output, compiled.Output).ToString("E2", CultureInfo.InvariantCulture)} |");
            if (problem.Mining.CompiledMiningFailure is { } failure)
                Console.WriteLine($"| {size} | the compiled function failed and the calls after it ran op by op: {failure.Message.Split('\n')[0]} | | | | | |");
            foreach (var (_, (_, output)) in results) output.Dispose();
        }
        Console.WriteLine();
        Console.WriteLine($"load after: {LoadAverage()}");
        return 0;
    }

    static (double Ms, Tensor Output) Timed(MiningProblem problem, MiningMethod method, Device device)
    {
        Synchronize(device);
        var watch = Stopwatch.StartNew();
        var output = problem.Run(method);
        Synchronize(device);
        return (watch.Elapsed.TotalMilliseconds, output);
    }

    static void Synchronize(Device device)
    {
        if (device.type == DeviceType.CUDA) cuda.synchronize(device);
    }

    /// <summary>max |fast − reference| / max |reference|, computed in float64.</summary>
    public static double RelativeError(Tensor reference, Tensor actual)
    {
        using var scope = NewDisposeScope();
        var expected = reference.to(ScalarType.Float64);
        return (actual.to(ScalarType.Float64) - expected).abs().max().item<double>() / expected.abs().max().item<double>();
    }

    static double Median(double[] values)
    {
        var sorted = values.Order().ToArray();
        return sorted.Length % 2 == 1 ? sorted[sorted.Length / 2] : (sorted[sorted.Length / 2 - 1] + sorted[sorted.Length / 2]) / 2;
    }

    static string LoadAverage() => File.Exists("/proc/loadavg") ? File.ReadAllText("/proc/loadavg").Trim() : "n/a";
}
