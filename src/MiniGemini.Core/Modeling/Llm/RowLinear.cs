using System.Buffers;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using TorchSharp;
using MiniGemini.Checkpoints;
using static TorchSharp.torch;

namespace MiniGemini.Modeling;

/// <summary>
/// <c>y = x Wᵀ + b</c> for a single row <c>x</c> (decoding one token) on the CPU with bfloat16 weights: every weight
/// row is streamed once, two bfloat16 at a time widened to float32 with one AND and one shift, and multiplied into
/// float32 accumulators with AVX-512 FMAs, the rows split over libtorch's thread count (<see cref="DecodeThreads"/>).
/// A decoded token reads all of the model's weights, so its time is the time to read them; libtorch's bfloat16
/// matrix-vector product reads them well below the memory bandwidth; this loop streams them closer to it
/// (docs/benchmarks.md#real-sizes).
/// </summary>
internal static class RowLinear
{
    /// <summary>Whether <see cref="Forward"/> serves <paramref name="x"/> with <paramref name="weight"/>.</summary>
    public static bool Applies(Tensor x, Tensor weight) =>
        Avx512F.IsSupported && weight.dtype == ScalarType.BFloat16 && x.dtype == ScalarType.BFloat16 &&
        x.device_type == DeviceType.CPU && weight.device_type == DeviceType.CPU && weight.dim() == 2 &&
        x.numel() == weight.shape[1] && weight.shape[1] % 2 == 0 && weight.is_contiguous() &&
        !(is_grad_enabled() && (weight.requires_grad || x.requires_grad));

    /// <summary>
    /// <c>linear(x, weight, bias)</c>, by this loop where it <see cref="Applies"/>, else by libtorch; with
    /// <paramref name="widened"/>, a bfloat16 or float16 result comes as float32 (of the same rounded values).
    /// </summary>
    public static Tensor Linear(Tensor x, Tensor weight, Tensor? bias = null, bool widened = false)
    {
        if (Applies(x, weight)) return Forward(x, weight, bias, widened);
        var y = nn.functional.linear(x, weight, bias);
        if (!widened || y.dtype is not (ScalarType.BFloat16 or ScalarType.Float16)) return y;
        using (y) return y.to(ScalarType.Float32);
    }

    /// <summary>
    /// x <c>[.., K]</c> holding one row, weight <c>[N, K]</c>, bias <c>[N]</c> → <c>[.., N]</c> in bfloat16, or with
    /// <paramref name="widened"/> in float32 (the bfloat16 values widened, as libtorch's product and cast give them).
    /// </summary>
    /// <remarks>
    /// x is split, the result rounded and widened here rather than by libtorch ops: an op large enough for libtorch's
    /// thread pool (the widening of a 256 000-token head's logits is one) leaves its workers spinning for a while after
    /// it, on the cores this loop's threads need.
    /// </remarks>
    public static unsafe Tensor Forward(Tensor x, Tensor weight, Tensor? bias, bool widened = false)
    {
        long n = weight.shape[0], k = weight.shape[1];
        var shape = x.shape.ToArray();
        shape[^1] = n;
        using var row = x.contiguous();
        using var biasRow = bias?.to(ScalarType.BFloat16).contiguous();
        var result = empty(shape, widened ? ScalarType.Float32 : ScalarType.BFloat16, x.device);
        long pairs = k / 2;
        var buffer = ArrayPool<uint>.Shared.Rent((int)pairs + Lanes); // one buffer per call and token otherwise
        var rounded = widened ? ArrayPool<ushort>.Shared.Rent((int)n) : null;
        nint ws = TensorMemory.Address(weight), rs = TensorMemory.Address(result), bs = biasRow is null ? 0 : TensorMemory.Address(biasRow);
        int threads = Math.Max(1, get_num_threads());
        int parts = threads == 1 ? 1 : (int)Math.Clamp(n / RowsPerPart, threads, threads * PartsPerThread);
        long perPart = (n + parts - 1) / parts;
        try
        {
            fixed (uint* start = buffer)
            fixed (ushort* roundedStart = rounded)
            {
                // x as its bfloat16 pairs, one 32-bit lane each like the weights', on a cache line: a load that spans two
                // lines costs the loop a fifth of its speed. Widened in registers, so that x takes half the L1 cache.
                uint* xs = start + (64 - ((nint)start & 63)) % 64 / sizeof(uint);
                Buffer.MemoryCopy((void*)TensorMemory.Address(row), xs, pairs * sizeof(uint), pairs * sizeof(uint));
                nint xp = (nint)xs, ys = widened ? (nint)roundedStart : rs;
                DecodeThreads.Run(parts, t =>
                {
                    long first = t * perPart, end = Math.Min(n, first + perPart);
                    Rows((uint*)ws, (uint*)xp, (ushort*)ys, (ushort*)bs, pairs, first, end);
                    if (widened)
                        for (long r = first; r < end; r++) ((float*)rs)[r] = BFloat16Bits.Widen(((ushort*)ys)[r]);
                }, threads);
            }
        }
        finally
        {
            ArrayPool<uint>.Shared.Return(buffer);
            if (rounded is not null) ArrayPool<ushort>.Shared.Return(rounded);
        }
        return result;
    }

    /// <summary>
    /// Parts of a product per thread, taken by whichever thread is free: on a virtual machine one virtual CPU can stall
    /// for a while (its host runs something else), and with one part per thread the other waited for it at the end.
    /// </summary>
    const int PartsPerThread = 8;

    /// <summary>Fewest rows in a part (fewer, longer parts for small products).</summary>
    const long RowsPerPart = 256;

    /// <summary>Rows longer than this many pairs (an x of more than 8 KiB) go through the loop four at a time.</summary>
    const long TogetherFromPairs = 2048;

    /// <summary>
    /// Rows [start, end) of the product; <paramref name="pairs"/> = K/2 (32-bit lanes per row). Weights that start off a
    /// 64-byte boundary (a memory-mapped safetensors file puts its tensors where its header ends) are read by aligned
    /// loads and shifted into place, which streams them as fast as aligned ones; a load spanning two cache lines does
    /// not. The lanes each FMA meets are the same either way, so the result does not depend on where the weights lie.
    /// </summary>
    static unsafe void Rows(uint* w, uint* x, ushort* y, ushort* bias, long pairs, long start, long end)
    {
        uint offset = (uint)((nint)w & 63) / sizeof(uint);
        if (offset == 0 || (nint)w % sizeof(uint) != 0 || pairs % Lanes != 0) // rows off by different amounts, or by half a lane
            Rows<StraightLanes>(w, x, y, bias, pairs, start, end, default);
        else
        {
            var shift = Vector512.Create(0u, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15) + Vector512.Create(offset);
            Rows<ShiftedLanes>(w, x, y, bias, pairs, start, end, shift);
        }
    }

    /// <summary>32-bit lanes in one vector.</summary>
    const int Lanes = 16;

    /// <summary>
    /// Long rows go through the loop four at a time, so that each load of x serves four rows: x is read from the cache
    /// as many bytes as a row of weights, and once the stream of weights pushes it out of the L1 cache that traffic slows
    /// the loop (Gemma-2B's down projection, K = 16 384, with x still in float32: 16 → 30 GB/s on one core); short rows
    /// go one at a time, where four streams of weights at once read slower than one. Each row keeps its own four chains
    /// of FMAs, summed in the same order either way. <paramref name="shift"/>: see <see cref="ShiftedLanes"/>.
    /// </summary>
    static unsafe void Rows<TLanes>(uint* w, uint* x, ushort* y, ushort* bias, long pairs, long start, long end,
        Vector512<uint> shift) where TLanes : struct, IRowLanes<TLanes>
    {
        long blockEnd = pairs - pairs % 32, r = start;
        for (; pairs > TogetherFromPairs && r + 4 <= end; r += 4)
        {
            uint* r0 = w + r * pairs, r1 = r0 + pairs, r2 = r1 + pairs, r3 = r2 + pairs;
            TLanes l0 = TLanes.At(r0), l1 = TLanes.At(r1), l2 = TLanes.At(r2), l3 = TLanes.At(r3);
            Vector512<float> a00 = default, a01 = default, a02 = default, a03 = default, a10 = default, a11 = default, a12 = default, a13 = default,
                a20 = default, a21 = default, a22 = default, a23 = default, a30 = default, a31 = default, a32 = default, a33 = default;
            for (long j = 0; j < blockEnd; j += 32)
            {
                Vector512<uint> x0 = Vector512.LoadAligned(x + j), x1 = Vector512.LoadAligned(x + j + 16);
                Vector512<float> e0 = Low(x0), o0 = High(x0), e1 = Low(x1), o1 = High(x1);
                Step(l0.Next(shift), l0.Next(shift), e0, o0, e1, o1, ref a00, ref a01, ref a02, ref a03);
                Step(l1.Next(shift), l1.Next(shift), e0, o0, e1, o1, ref a10, ref a11, ref a12, ref a13);
                Step(l2.Next(shift), l2.Next(shift), e0, o0, e1, o1, ref a20, ref a21, ref a22, ref a23);
                Step(l3.Next(shift), l3.Next(shift), e0, o0, e1, o1, ref a30, ref a31, ref a32, ref a33);
            }
            y[r] = Finish(r0, x, bias, r, blockEnd, pairs, a00, a01, a02, a03);
            y[r + 1] = Finish(r1, x, bias, r + 1, blockEnd, pairs, a10, a11, a12, a13);
            y[r + 2] = Finish(r2, x, bias, r + 2, blockEnd, pairs, a20, a21, a22, a23);
            y[r + 3] = Finish(r3, x, bias, r + 3, blockEnd, pairs, a30, a31, a32, a33);
        }
        for (; r < end; r++)
        {
            uint* row = w + r * pairs;
            var lanes = TLanes.At(row);
            Vector512<float> a0 = default, a1 = default, a2 = default, a3 = default;
            for (long j = 0; j < blockEnd; j += 32)
            {
                Vector512<uint> x0 = Vector512.LoadAligned(x + j), x1 = Vector512.LoadAligned(x + j + 16);
                Step(lanes.Next(shift), lanes.Next(shift), Low(x0), High(x0), Low(x1), High(x1), ref a0, ref a1, ref a2, ref a3);
            }
            y[r] = Finish(row, x, bias, r, blockEnd, pairs, a0, a1, a2, a3);
        }
    }

    /// <summary>A row's weights, 16 lanes at a time from its start.</summary>
    interface IRowLanes<TSelf> where TSelf : struct, IRowLanes<TSelf>
    {
        static abstract unsafe TSelf At(uint* row);

        /// <summary>The next 16 lanes; <paramref name="shift"/>: see <see cref="ShiftedLanes"/>.</summary>
        Vector512<uint> Next(Vector512<uint> shift);
    }

    /// <summary>Lanes read where they lie.</summary>
    unsafe struct StraightLanes : IRowLanes<StraightLanes>
    {
        uint* _next;

        public static StraightLanes At(uint* row) => new() { _next = row };

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public Vector512<uint> Next(Vector512<uint> shift)
        {
            var lanes = Vector512.Load(_next);
            _next += Lanes;
            return lanes;
        }
    }

    /// <summary>
    /// Lanes of a row that starts <c>s</c> lanes past a 64-byte boundary, read as whole aligned cache lines: each 16
    /// lanes are the last 16 − s of one line and the first s of the next, picked by <c>shift</c> = [s, s + 1, …, s + 15]
    /// from the pair of lines. Reads at most the lines that hold the row's lanes, so never a page the row is not on.
    /// </summary>
    unsafe struct ShiftedLanes : IRowLanes<ShiftedLanes>
    {
        uint* _next;
        Vector512<uint> _line;

        public static ShiftedLanes At(uint* row)
        {
            var line = (uint*)((nint)row & ~(nint)63);
            return new() { _line = Vector512.LoadAligned(line), _next = line + Lanes };
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public Vector512<uint> Next(Vector512<uint> shift)
        {
            var line = Vector512.LoadAligned(_next);
            _next += Lanes;
            var lanes = Avx512F.PermuteVar16x32x2(_line, shift, line);
            _line = line;
            return lanes;
        }
    }

    /// <summary>
    /// 32 bfloat16 pairs of one row (<paramref name="first"/>, <paramref name="second"/>: element 2i low, 2i+1 high) into
    /// its four chains of FMAs, which keep a long row bound by memory rather than by the FMA latency.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static void Step(Vector512<uint> first, Vector512<uint> second, Vector512<float> even0, Vector512<float> odd0, Vector512<float> even1,
        Vector512<float> odd1, ref Vector512<float> a0, ref Vector512<float> a1, ref Vector512<float> a2, ref Vector512<float> a3)
    {
        a0 = Avx512F.FusedMultiplyAdd(Low(first), even0, a0);
        a1 = Avx512F.FusedMultiplyAdd(High(first), odd0, a1);
        a2 = Avx512F.FusedMultiplyAdd(Low(second), even1, a2);
        a3 = Avx512F.FusedMultiplyAdd(High(second), odd1, a3);
    }

    /// <summary>A row's chains summed, its last pairs (past the blocks of 32) and bias added, rounded to bfloat16.</summary>
    static unsafe ushort Finish(uint* row, uint* x, ushort* bias, long r, long blockEnd, long pairs,
        Vector512<float> a0, Vector512<float> a1, Vector512<float> a2, Vector512<float> a3)
    {
        float sum = Vector512.Sum((a0 + a2) + (a1 + a3));
        for (long j = blockEnd; j < pairs; j++)
            sum += BitConverter.UInt32BitsToSingle(row[j] << 16) * BitConverter.UInt32BitsToSingle(x[j] << 16) +
                   BitConverter.UInt32BitsToSingle(row[j] & 0xFFFF0000u) * BitConverter.UInt32BitsToSingle(x[j] & 0xFFFF0000u);
        if (bias != null) sum += BFloat16Bits.Widen(bias[r]); // in float32, as libtorch adds it before rounding
        return BFloat16Bits.Round(sum);
    }

    /// <summary>The low bfloat16 of each lane as float32: bfloat16 is the top half of a float32.</summary>
    internal static Vector512<float> Low(Vector512<uint> lanes) => Vector512.ShiftLeft(lanes, 16).AsSingle();

    /// <summary>The high bfloat16 of each lane as float32.</summary>
    internal static Vector512<float> High(Vector512<uint> lanes) => (lanes & Vector512.Create(0xFFFF0000u)).AsSingle();
}
