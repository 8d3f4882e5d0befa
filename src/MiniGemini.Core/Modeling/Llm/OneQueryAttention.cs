using System.Buffers;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using TorchSharp;
using MiniGemini.Checkpoints;
using static TorchSharp.torch;

namespace MiniGemini.Modeling;

/// <summary>
/// <c>softmax(q·kᵀ/√d)·v</c> for one query per head (decoding one token) on the CPU in bfloat16, read straight from the
/// KV cache: each query head streams its key rows once for the scores and its value rows once for the sum, in float32,
/// rounded to bfloat16 once at the end. libtorch's bfloat16 attention on the CPU is slow for a single query, the more so
/// on the cache's strided views: Vicuna-7B's 32 heads over 667 positions took 4.8–7.2 ms per layer (0.4 ms in float32),
/// a third of a 7B token's time; this loop takes 0.29–0.35 ms (docs/benchmarks.md#real-sizes).
/// </summary>
internal static class OneQueryAttention
{
    /// <summary>
    /// Whether <see cref="Forward"/> serves q <c>[B, kv, g, d]</c> (heads contiguous) with keys and values
    /// <c>[B, kv, S, d]</c> (each row contiguous) and no mask, shared key/value heads included. Where heads share them
    /// libtorch alone is a little faster (Gemma-2B's one key/value head for 8 queries: 0.10 against 0.12 ms), but it runs
    /// on libtorch's OpenMP threads, which then spin for milliseconds on the cores that the decode's next products need.
    /// </summary>
    public static bool Applies(Tensor q, Tensor keys, Tensor values, Tensor? mask) =>
        Avx512F.IsSupported && mask is null && q.dtype == ScalarType.BFloat16 && q.device_type == DeviceType.CPU &&
        keys.dtype == ScalarType.BFloat16 && values.dtype == ScalarType.BFloat16 &&
        q.dim() == 4 && keys.dim() == 4 && values.dim() == 4 && q.shape[3] % 32 == 0 &&
        q.stride(3) == 1 && q.stride(2) == q.shape[3] && q.stride(1) == q.shape[2] * q.shape[3] &&
        keys.stride(3) == 1 && values.stride(3) == 1 && keys.shape.SequenceEqual(values.shape) &&
        keys.shape[0] == q.shape[0] && keys.shape[1] == q.shape[1] && keys.shape[3] == q.shape[3] &&
        !(is_grad_enabled() && (q.requires_grad || keys.requires_grad || values.requires_grad));

    /// <summary>q <c>[B, kv, g, d]</c>, keys and values <c>[B, kv, S, d]</c> → <c>[B, kv, g, d]</c> in bfloat16.</summary>
    public static unsafe Tensor Forward(Tensor q, Tensor keys, Tensor values)
    {
        long batch = q.shape[0], kvHeads = q.shape[1], group = q.shape[2], d = q.shape[3], positions = keys.shape[2];
        var result = empty([batch, kvHeads, group, d], ScalarType.BFloat16);
        var layout = new Layout(TensorMemory.Address(q), TensorMemory.Address(keys), TensorMemory.Address(values),
            TensorMemory.Address(result), q.stride(0), keys.stride(0), keys.stride(1), keys.stride(2),
            values.stride(0), values.stride(1), values.stride(2), kvHeads, group, d, positions, (float)(1 / Math.Sqrt(d)));
        long heads = batch * kvHeads * group;
        int threads = (int)Math.Min(heads, Math.Max(1, get_num_threads()));
        long perThread = (heads + threads - 1) / threads;
        DecodeThreads.Run(threads, t => Heads(layout, t * perThread, Math.Min(heads, (t + 1) * perThread)));
        return result;
    }

    /// <summary>Where everything lies: addresses, and strides in bfloat16 elements.</summary>
    readonly record struct Layout(nint Q, nint Keys, nint Values, nint Output, long QBatch,
        long KeyBatch, long KeyHead, long KeyRow, long ValueBatch, long ValueHead, long ValueRow,
        long KvHeads, long Group, long D, long Positions, float Scale)
    {
        /// <summary>Query head <paramref name="head"/> (counted over batch rows, kv heads and groups) as bfloat16 pairs.</summary>
        public unsafe uint* Query(long head) => (uint*)((ushort*)Q + head / (KvHeads * Group) * QBatch + head % (KvHeads * Group) * D);

        /// <summary>Position 0's key row for query head <paramref name="head"/>; the next lie <c>KeyRow</c> apart.</summary>
        public unsafe ushort* Keys0(long head) =>
            (ushort*)Keys + head / (KvHeads * Group) * KeyBatch + head / Group % KvHeads * KeyHead;

        /// <summary>Position 0's value row for query head <paramref name="head"/>; the next lie <c>ValueRow</c> apart.</summary>
        public unsafe ushort* Values0(long head) =>
            (ushort*)Values + head / (KvHeads * Group) * ValueBatch + head / Group % KvHeads * ValueHead;
    }

    /// <summary>
    /// Query heads [first, end): scores over every position, their softmax, the weighted sum of the values. Positions
    /// are the outer loop, so that the heads' rows of one position, which lie together in the cache, are read together.
    /// </summary>
    static unsafe void Heads(in Layout at, long first, long end)
    {
        long count = end - first, pairs = at.D / 2, positions = at.Positions;
        var buffer = ArrayPool<float>.Shared.Rent((int)(count * (positions + 2 * at.D)) + 16);
        // Each head's first key row and first value row, side by side; on the stack unless a large batch has many heads.
        Span<nint> rows = count <= 256 ? stackalloc nint[(int)(2 * count)] : new nint[2 * count];
        try
        {
            fixed (float* start = buffer)
            fixed (nint* rowsAt = rows)
            {
                // Each query split into its even and odd elements, so that each 32-bit lane of a key row meets its two
                // factors (as in RowLinear); the sums are kept the same way and interleaved at the end.
                float* queries = start, sums = queries + count * at.D, scores = sums + count * at.D;
                for (long h = 0; h < count; h++)
                {
                    uint* query = at.Query(first + h);
                    for (long j = 0; j < pairs; j++)
                    {
                        queries[h * at.D + j] = BitConverter.UInt32BitsToSingle(query[j] << 16);
                        queries[h * at.D + pairs + j] = BitConverter.UInt32BitsToSingle(query[j] & 0xFFFF0000u);
                    }
                }
                // Each head's first rows, found once: the divisions that find them cost more than a row's dot product.
                for (long h = 0; h < count; h++)
                    (rowsAt[2 * h], rowsAt[2 * h + 1]) = ((nint)at.Keys0(first + h), (nint)at.Values0(first + h));
                for (long s = 0; s < positions; s++)
                    for (long h = 0; h < count; h++)
                    {
                        var key = (uint*)((ushort*)rowsAt[2 * h] + s * at.KeyRow);
                        scores[h * positions + s] = Dot(key, queries + h * at.D, pairs) * at.Scale;
                    }
                for (long h = 0; h < count; h++)
                    Softmax(new Span<float>(scores + h * positions, (int)positions));
                new Span<float>(sums, (int)(count * at.D)).Clear();
                for (long s = 0; s < positions; s++)
                    for (long h = 0; h < count; h++)
                    {
                        var value = (uint*)((ushort*)rowsAt[2 * h + 1] + s * at.ValueRow);
                        Accumulate(value, scores[h * positions + s], sums + h * at.D, pairs);
                    }
                for (long h = 0; h < count; h++)
                {
                    ushort* output = (ushort*)at.Output + (first + h) * at.D;
                    for (long j = 0; j < pairs; j++)
                    {
                        output[2 * j] = BFloat16Bits.Round(sums[h * at.D + j]);
                        output[2 * j + 1] = BFloat16Bits.Round(sums[h * at.D + pairs + j]);
                    }
                }
            }
        }
        finally
        {
            ArrayPool<float>.Shared.Return(buffer);
        }
    }

    /// <summary>In place, in float32.</summary>
    static void Softmax(Span<float> scores)
    {
        float max = float.NegativeInfinity, total = 0;
        foreach (float score in scores) max = Math.Max(max, score);
        for (int s = 0; s < scores.Length; s++) total += scores[s] = MathF.Exp(scores[s] - max);
        for (int s = 0; s < scores.Length; s++) scores[s] /= total;
    }

    /// <summary>One key row (<paramref name="pairs"/> lanes of two bfloat16) · the query.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static unsafe float Dot(uint* row, float* query, long pairs)
    {
        float* even = query, odd = query + pairs;
        Vector512<float> a0 = default, a1 = default;
        for (long j = 0; j < pairs; j += 16)
        {
            var lanes = Vector512.Load(row + j);
            a0 = Avx512F.FusedMultiplyAdd(RowLinear.Low(lanes), Vector512.Load(even + j), a0);
            a1 = Avx512F.FusedMultiplyAdd(RowLinear.High(lanes), Vector512.Load(odd + j), a1);
        }
        return Vector512.Sum(a0 + a1);
    }

    /// <summary><c>sum += weight · row</c> for one value row, its even and odd elements kept apart.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static unsafe void Accumulate(uint* row, float weight, float* sum, long pairs)
    {
        float* sumEven = sum, sumOdd = sum + pairs;
        var w = Vector512.Create(weight);
        for (long j = 0; j < pairs; j += 16)
        {
            var lanes = Vector512.Load(row + j);
            Vector512.Store(Avx512F.FusedMultiplyAdd(RowLinear.Low(lanes), w, Vector512.Load(sumEven + j)), sumEven + j);
            Vector512.Store(Avx512F.FusedMultiplyAdd(RowLinear.High(lanes), w, Vector512.Load(sumOdd + j)), sumOdd + j);
        }
    }
}
