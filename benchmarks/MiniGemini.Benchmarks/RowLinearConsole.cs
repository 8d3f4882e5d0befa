using System.Diagnostics;
using MiniGemini.Modeling;
using static TorchSharp.torch;

namespace MiniGemini.Benchmarks;

/// <summary>
/// <c>row-linear [--runs 20]</c>: one bfloat16 row times the weight matrices of MGM-2B and MGM-7B (decoding one token),
/// by libtorch's <c>linear</c> and by <see cref="RowLinear"/>, with the bytes of weights read per second and the largest
/// difference between the two; and by <see cref="RowLinear"/> once more with the same weights 24 bytes past a cache line,
/// where a memory-mapped checkpoint puts them (MGM-2B's safetensors header ends there).
/// </summary>
public static class RowLinearConsole
{
    /// <summary>Runs the measurement; returns the process exit code.</summary>
    public static int Run(string[] args)
    {
        var arguments = new ConsoleArgs(args);
        int runs = arguments.Int("runs", 20);
        Console.WriteLine($"{get_num_threads()} CPU threads; weights [N, K] in bfloat16, x [1, 1, K]");
        foreach (var (name, n, k) in new[] { ("Gemma-2B gate+up", 32768L, 2048L), ("Gemma-2B down", 2048L, 16384L), ("Gemma-2B head", 256000L, 2048L), ("Llama-7B gate+up", 22016L, 4096L), ("Llama-7B down", 4096L, 11008L) })
        {
            using var scope = NewDisposeScope();
            var weight = (randn(n, k) * 0.02).to(ScalarType.BFloat16);
            var x = randn(1, 1, k).to(ScalarType.BFloat16);
            double bytes = n * k * 2;
            using var _ = inference_mode();
            double torchSeconds = Best(runs, () => nn.functional.linear(x, weight).Dispose());
            double oursSeconds = Best(runs, () => RowLinear.Forward(x, weight, null).Dispose());
            var memory = empty(n * k + 32, ScalarType.BFloat16);
            var offLine = memory.narrow(0, 12, n * k).view(n, k).copy_(weight);
            double offLineSeconds = Best(runs, () => RowLinear.Forward(x, offLine, null).Dispose());
            var reference = nn.functional.linear(x.to(ScalarType.Float32), weight.to(ScalarType.Float32));
            double torchError = (nn.functional.linear(x, weight).to(ScalarType.Float32) - reference).abs().max().item<float>();
            double oursError = (RowLinear.Forward(x, weight, null).to(ScalarType.Float32) - reference).abs().max().item<float>();
            Console.WriteLine($"{name,-18} [{n}, {k}]: libtorch {torchSeconds * 1e3,7:F2} ms {bytes / torchSeconds / 1e9,5:F1} GB/s | " +
                              $"RowLinear {oursSeconds * 1e3,7:F2} ms {bytes / oursSeconds / 1e9,5:F1} GB/s, " +
                              $"off a line {offLineSeconds * 1e3,7:F2} ms {bytes / offLineSeconds / 1e9,5:F1} GB/s | " +
                              $"max |Δ| to float32: libtorch {torchError:E1}, RowLinear {oursError:E1}");
        }
        return 0;
    }

    static double Best(int runs, Action action)
    {
        action();
        double best = double.MaxValue;
        for (int i = 0; i < runs; i++)
        {
            var clock = Stopwatch.StartNew();
            action();
            best = Math.Min(best, clock.Elapsed.TotalSeconds);
        }
        return best;
    }
}
