using System.Buffers;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using TorchSharp;
using MiniGemini.Checkpoints;
using static TorchSharp.torch;

namespace MiniGemini.Modeling;

/// <summary>
/// <c>y = x Wᵀ + b</c> for a single row <c>x</c> (decoding one token) on the CPU with bfloat16 weights: every weight
/// row is streamed once, two bfloat16 at a time widened to float32 with one AND and one shift, and multiplied into
/// float32 accumulators with AVX-512 FMAs, the rows split over libtorch's thread count. A decoded token reads all of the
/// model's weights, so its time is the time to read them; libtorch's bfloat16 matrix-vector product reads them well
/// below the memory bandwidth; this loop streams them closer to it (docs/benchmarks.md#real-sizes).
/// </summary>
internal static class RowLinear
{
    /// <summary>Whether <see cref="Forward"/> serves <paramref name="x"/> with <paramref name="weight"/>.</summary>
    public static bool Applies(Tensor x, Tensor weight) =>
        Avx512F.IsSupported && weight.dtype == ScalarType.BFloat16 && x.dtype == ScalarType.BFloat16 &&
        x.device_type == DeviceType.CPU && weight.device_type == DeviceType.CPU && weight.dim() == 2 &&
        x.numel() == weight.shape[1] && weight.shape[1] % 2 == 0 && weight.is_contiguous() &&
        !(is_grad_enabled() && (weight.requires_grad || x.requires_grad));

    /// <summary><c>linear(x, weight, bias)</c>, by this loop where it <see cref="Applies"/>, else by libtorch.</summary>
    public static Tensor Linear(Tensor x, Tensor weight, Tensor? bias = null) =>
        Applies(x, weight) ? Forward(x, weight, bias) : nn.functional.linear(x, weight, bias);

    /// <summary>x <c>[.., K]</c> holding one row, weight <c>[N, K]</c>, bias <c>[N]</c> → <c>[.., N]</c>.</summary>
    /// <remarks>
    /// x is split and the result rounded here rather than by libtorch ops: an op large enough for libtorch's thread pool
    /// leaves its workers spinning for a while after it, on the cores this loop's threads need.
    /// </remarks>
    public static unsafe Tensor Forward(Tensor x, Tensor weight, Tensor? bias)
    {
        long n = weight.shape[0], k = weight.shape[1];
        var shape = x.shape.ToArray();
        shape[^1] = n;
        using var row = x.contiguous();
        using var biasRow = bias?.to(ScalarType.BFloat16).contiguous();
        var result = empty(shape, ScalarType.BFloat16, x.device);
        // x split into its even and odd elements, so that each 32-bit lane of a weight load meets its two factors.
        var pairs = ArrayPool<float>.Shared.Rent((int)k);
        var xs = (ushort*)TensorMemory.Address(row);
        for (long j = 0; j < k / 2; j++)
        {
            pairs[j] = Float(xs[2 * j]);
            pairs[k / 2 + j] = Float(xs[2 * j + 1]);
        }
        nint ws = TensorMemory.Address(weight), ys = TensorMemory.Address(result), bs = biasRow is null ? 0 : TensorMemory.Address(biasRow);
        int threads = Math.Max(1, get_num_threads());
        long perThread = (n + threads - 1) / threads;
        try
        {
            fixed (float* even = pairs)
            {
                nint evens = (nint)even;
                Parallel.For(0, threads, new ParallelOptions { MaxDegreeOfParallelism = threads }, t =>
                {
                    long start = t * perThread, end = Math.Min(n, start + perThread);
                    Rows((uint*)ws, (float*)evens, (float*)evens + k / 2, (ushort*)ys, (ushort*)bs, k / 2, start, end);
                });
            }
        }
        finally
        {
            ArrayPool<float>.Shared.Return(pairs); // one buffer per call and token otherwise
        }
        return result;
    }

    static float Float(ushort bfloat16) => BitConverter.UInt32BitsToSingle((uint)bfloat16 << 16);

    /// <summary>float32 → bfloat16, rounded to nearest even, as libtorch rounds (NaN stays NaN).</summary>
    static ushort BFloat16(float value)
    {
        uint bits = BitConverter.SingleToUInt32Bits(value);
        if (float.IsNaN(value)) return (ushort)((bits >> 16) | 0x40);
        return (ushort)((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16);
    }

    /// <summary>Rows [start, end) of the product; <paramref name="pairs"/> = K/2 (32-bit lanes per row).</summary>
    static unsafe void Rows(uint* w, float* even, float* odd, ushort* y, ushort* bias, long pairs, long start, long end)
    {
        long blockEnd = pairs - pairs % 32;
        for (long r = start; r < end; r++)
        {
            uint* row = w + r * pairs;
            // Four chains of FMAs in flight, so that a long row is bound by memory rather than by the FMA latency.
            Vector512<float> a0 = default, a1 = default, a2 = default, a3 = default;
            long j = 0;
            for (; j < blockEnd; j += 32)
            {
                var first = Vector512.Load(row + j);                             // 32 bfloat16: element 2i low, 2i+1 high
                var second = Vector512.Load(row + j + 16);
                a0 = Avx512F.FusedMultiplyAdd(Low(first), Vector512.Load(even + j), a0);
                a1 = Avx512F.FusedMultiplyAdd(High(first), Vector512.Load(odd + j), a1);
                a2 = Avx512F.FusedMultiplyAdd(Low(second), Vector512.Load(even + j + 16), a2);
                a3 = Avx512F.FusedMultiplyAdd(High(second), Vector512.Load(odd + j + 16), a3);
            }
            float sum = Vector512.Sum((a0 + a2) + (a1 + a3));
            for (; j < pairs; j++)
                sum += BitConverter.UInt32BitsToSingle(row[j] << 16) * even[j] + BitConverter.UInt32BitsToSingle(row[j] & 0xFFFF0000u) * odd[j];
            if (bias != null) sum += Float(bias[r]); // in float32, as libtorch adds it before rounding
            y[r] = BFloat16(sum);
        }
    }

    /// <summary>The low bfloat16 of each lane as float32: bfloat16 is the top half of a float32.</summary>
    static Vector512<float> Low(Vector512<uint> lanes) => Vector512.ShiftLeft(lanes, 16).AsSingle();

    /// <summary>The high bfloat16 of each lane as float32.</summary>
    static Vector512<float> High(Vector512<uint> lanes) => (lanes & Vector512.Create(0xFFFF0000u)).AsSingle();
}
