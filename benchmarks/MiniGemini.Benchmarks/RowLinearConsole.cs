using System.Diagnostics;
using MiniGemini.Modeling;
using static TorchSharp.torch;

namespace MiniGemini.Benchmarks;

/// <summary>
/// <c>row-linear [--runs 20]</c>: one bfloat16 row times the weight matrices of MGM-2B and MGM-7B (decoding one token),
/// by libtorch's <c>linear</c> and by <see cref="RowLinear"/>, with the bytes of weights read per second and the largest
/// difference between the two; and by <see cref="RowLinear"/> once more with the same weights 24 bytes past a cache line,
/// where a memory-mapped checkpoint puts them (MGM-2B's safetensors header ends there). Then one query's attention over
/// the KV cache of the real prompt (667 positions) at Vicuna-7B's and Gemma-2B's head layout, by libtorch's
/// <c>scaled_dot_product_attention</c> and by <see cref="OneQueryAttention"/>.
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
        foreach (var (name, kvHeads, group, d) in new[] { ("Vicuna-7B, 32 heads", 32L, 1L, 128L), ("Gemma-2B, 8 heads on 1", 1L, 8L, 256L) })
        {
            using var scope = NewDisposeScope();
            using var _ = inference_mode();
            const long positions = 667;
            var entries = randn(1, 1024, 2 * kvHeads, d).to(ScalarType.BFloat16); // KvCache's storage: [B, allocated, 2·kv, d]
            var halves = entries.chunk(2, 2);
            var keys = halves[0].transpose(1, 2).narrow(2, 0, positions);        // [B, kv, S, d] views, as a decode step sees them
            var values = halves[1].transpose(1, 2).narrow(2, 0, positions);
            var q = randn(1, kvHeads, group, d).to(ScalarType.BFloat16);
            double torchSeconds = Best(runs, () => nn.functional.scaled_dot_product_attention(q, keys, values).Dispose());
            double oursSeconds = Best(runs, () => OneQueryAttention.Forward(q, keys, values).Dispose());
            Console.WriteLine($"attention, {name,-22} over {positions} positions: libtorch {torchSeconds * 1e3,6:F2} ms | " +
                              $"OneQueryAttention {oursSeconds * 1e3,6:F2} ms (used: {OneQueryAttention.Applies(q, keys, values, null)})");
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
