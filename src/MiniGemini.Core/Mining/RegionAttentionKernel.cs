using System.Numerics;
using System.Runtime.CompilerServices;
using TorchSharp;
using static TorchSharp.torch;

namespace MiniGemini.Mining;

/// <summary>
/// <see cref="RegionAttention"/> for float32 maps on the CPU, reading the NCHW map in place, twice.
/// <para>Memory order decides the speed: a token's region is s short runs in each of Da channel planes, so the map is
/// swept the way it lies instead, a band of whole block rows at a time, a few channel planes side by side, each plane
/// read row after row (long sequential runs that the prefetchers follow). Pass 1 gathers per HR position the dot
/// product with its token's u and the LayerNorm moments; the softmax runs per token of the band; pass 2 sweeps the
/// band again for the weighted sums. Bands are independent and run in parallel.</para>
/// <para>Every position is accumulated relative to its own channel-0 value x₀ (d = x − x₀): sums of d stay near the
/// spread of the features, so Σd² − (Σd)²/Da keeps its digits even where |μ| ≫ σ, and so do the dot products.</para>
/// </summary>
internal static unsafe class RegionAttentionKernel
{
    /// <summary>Channel planes swept side by side; their partial sums stay in float registers.</summary>
    const int ChannelChunk = 8;
    /// <summary>Bands per thread: enough to balance, few enough that each plane is read in long runs.</summary>
    const int BandsPerThread = 2;

    public static bool Supports(Tensor map) =>
        map.device_type == DeviceType.CPU && map.dtype == ScalarType.Float32 && map.dim() == 4 && map.stride(3) == 1;

    /// <summary>maps <c>[N, Da, Rows·s, Cols·s]</c>, u <c>[N, T, Da]</c>, c <c>[N, T]</c> → <c>[N, T, Da]</c> (float32).</summary>
    public static Tensor Run(Tensor map, Tensor u, Tensor c, RegionGrid grid, double eps)
    {
        using var scope = NewDisposeScope();
        long images = map.shape[0], channels = map.shape[1];
        var uT = u.to(ScalarType.Float32).transpose(1, 2).contiguous();                       // [N, Da, T]
        var uSums = u.to(ScalarType.Float64).sum(-1);                                          // [N, T]
        var offsets = c.to(ScalarType.Float32).contiguous();                                   // [N, T]
        var output = empty([images, channels, grid.Tokens], ScalarType.Float32);               // [N, Da, T]
        var job = new Job(Address<float>(map), map.stride(0), map.stride(1), map.stride(2), channels, grid,
            Address<float>(uT), Address<double>(uSums), Address<float>(offsets), Address<float>(output), eps);

        int threads = Math.Max(1, get_num_threads());
        long blockRowsPerBand = Math.Max(1, grid.Rows * images / (BandsPerThread * threads));
        long bandsPerImage = (grid.Rows + blockRowsPerBand - 1) / blockRowsPerBand;
        Parallel.For(0L, images * bandsPerImage, new ParallelOptions { MaxDegreeOfParallelism = threads },
            () => new Workspace(Math.Min(blockRowsPerBand, grid.Rows), grid),
            (band, _, workspace) =>
            {
                long image = band / bandsPerImage, firstRow = band % bandsPerImage * blockRowsPerBand;
                job.Band(workspace, image, firstRow, Math.Min(blockRowsPerBand, grid.Rows - firstRow));
                return workspace;
            },
            _ => { });
        return output.transpose(1, 2).MoveToOuterDisposeScope();                               // [N, T, Da]
    }

    static T* Address<T>(Tensor t) where T : unmanaged => (T*)t.storage<T>().data_ptr() + t.storage_offset();

    /// <summary>Per-thread scratch for one band of block rows.</summary>
    sealed class Workspace(long blockRows, RegionGrid grid)
    {
        readonly long _positions = blockRows * grid.Block * grid.Width;
        /// <summary>Per position: x₀, its channel-0 value; the moments below are of d = x − x₀.</summary>
        public readonly float[] Shift = new float[blockRows * grid.Block * grid.Width];
        /// <summary>Per position: Σ u·d, Σ d, Σ d²; after the softmax: exp(score − max), mean(d), 1/σ.</summary>
        public readonly double[] Dots = new double[blockRows * grid.Block * grid.Width];
        public readonly double[] Sums = new double[blockRows * grid.Block * grid.Width];
        public readonly double[] Squares = new double[blockRows * grid.Block * grid.Width];
        /// <summary>Per position: the softmax weight over 1/σ, pᵢrᵢ.</summary>
        public readonly float[] Weights = new float[blockRows * grid.Block * grid.Width];
        /// <summary>Per token: Σ pᵢ/σᵢ · mean(dᵢ).</summary>
        public readonly double[] MeanShift = new double[blockRows * grid.Cols];
        /// <summary>u of a chunk of channels spread over a map row: [k, w] = u[token of column w, c0 + k].</summary>
        public readonly float[] RowU = new float[ChannelChunk * grid.Width];
        /// <summary>Pass-2 sums of a chunk of channels over the s rows of a block row: [k, w].</summary>
        public readonly float[] Partial = new float[ChannelChunk * grid.Width];

        public void Clear()
        {
            Array.Clear(Dots, 0, (int)_positions);
            Array.Clear(Sums, 0, (int)_positions);
            Array.Clear(Squares, 0, (int)_positions);
        }
    }

    sealed class Job(float* map, long strideN, long strideC, long strideH, long channels, RegionGrid grid,
        float* uT, double* uSums, float* offsets, float* output, double eps)
    {
        readonly long _s = grid.Block, _cols = grid.Cols, _width = grid.Width, _tokens = grid.Tokens;

        /// <summary>Block rows [firstRow, firstRow + rows) of one image.</summary>
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        public void Band(Workspace ws, long image, long firstRow, long rows)
        {
            float* band = map + image * strideN + firstRow * _s * strideH;                      // channel 0, first HR row
            float* u = uT + image * channels * _tokens;
            ws.Clear();
            fixed (float* shift = ws.Shift, weights = ws.Weights, rowU = ws.RowU, partial = ws.Partial)
            fixed (double* dots = ws.Dots, sums = ws.Sums, squares = ws.Squares, meanShift = ws.MeanShift)
            {
                for (long h = 0; h < rows * _s; h++)
                    new ReadOnlySpan<float>(band + h * strideH, (int)_width).CopyTo(new Span<float>(shift + h * _width, (int)_width));
                for (long c0 = 0; c0 < channels; c0 += ChannelChunk)
                {
                    int chunk = (int)Math.Min(ChannelChunk, channels - c0);
                    for (long r = 0; r < rows; r++)
                    {
                        SpreadU(u + c0 * _tokens + (firstRow + r) * _cols, chunk, rowU);
                        for (long a = 0; a < _s; a++)
                        {
                            long at = (r * _s + a) * _width;
                            Moments(band + c0 * strideC + (r * _s + a) * strideH, chunk, rowU, shift + at, dots + at, sums + at, squares + at);
                        }
                    }
                }
                for (long r = 0; r < rows; r++)
                    for (long col = 0; col < _cols; col++)
                    {
                        long token = image * _tokens + (firstRow + r) * _cols + col;
                        meanShift[r * _cols + col] = Softmax(r * _s * _width + col * _s, uSums[token], offsets[token], dots, sums, squares, weights);
                    }
                float* outputBand = output + image * channels * _tokens + firstRow * _cols;
                for (long c0 = 0; c0 < channels; c0 += ChannelChunk)
                {
                    int chunk = (int)Math.Min(ChannelChunk, channels - c0);
                    for (long r = 0; r < rows; r++)
                    {
                        long at = r * _s * _width;
                        WeightedSums(band + c0 * strideC + r * _s * strideH, chunk, shift + at, weights + at,
                            meanShift + r * _cols, partial, outputBand + c0 * _tokens + r * _cols);
                    }
                }
            }
        }

        /// <summary>rowU[k, w] = u[c0 + k, token of column w] for one block row (u given at channel c0, first token of the row).</summary>
        void SpreadU(float* u, int chunk, float* rowU)
        {
            for (int k = 0; k < chunk; k++)
                for (long col = 0; col < _cols; col++)
                    new Span<float>(rowU + k * _width + col * _s, (int)_s).Fill(u[k * _tokens + col]);
        }

        /// <summary>
        /// Pass 1 over one HR row and a chunk of channels: Σ u·d, Σ d, Σ d² added to the row's accumulators.
        /// Two vectors (a cache line) of each plane at a time: the planes are a multiple of 4 KB apart and compete
        /// for the same L1 sets, so a line is used up before the next plane's line can evict it.
        /// </summary>
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        void Moments(float* row, int chunk, float* rowU, float* shift, double* dots, double* sums, double* squares)
        {
            long width = _width, planeStride = strideC;
            int lanes = Vector<float>.Count;
            long w = 0;
            for (; w + 2 * lanes <= width; w += 2 * lanes)
            {
                var x00 = Load(shift + w);
                var x01 = Load(shift + w + lanes);
                Vector<float> dot0 = default, sum0 = default, square0 = default, dot1 = default, sum1 = default, square1 = default;
                float* x = row + w;
                float* uk = rowU + w;
                for (int k = 0; k < chunk; k++, x += planeStride, uk += width)
                {
                    var d0 = Load(x) - x00;
                    var d1 = Load(x + lanes) - x01;
                    dot0 = MultiplyAdd(Load(uk), d0, dot0);
                    dot1 = MultiplyAdd(Load(uk + lanes), d1, dot1);
                    sum0 += d0;
                    sum1 += d1;
                    square0 = MultiplyAdd(d0, d0, square0);
                    square1 = MultiplyAdd(d1, d1, square1);
                }
                AddWidened(dots + w, dot0);
                AddWidened(dots + w + lanes, dot1);
                AddWidened(sums + w, sum0);
                AddWidened(sums + w + lanes, sum1);
                AddWidened(squares + w, square0);
                AddWidened(squares + w + lanes, square1);
            }
            for (; w < width; w++)
            {
                float dot = 0, sum = 0, square = 0;
                for (int k = 0; k < chunk; k++)
                {
                    float d = row[k * planeStride + w] - shift[w];
                    dot += rowU[k * width + w] * d;
                    sum += d;
                    square += d * d;
                }
                dots[w] += dot;
                sums[w] += sum;
                squares[w] += square;
            }
        }

        /// <summary>
        /// Token softmax over its positions (first one at <paramref name="first"/>): score = rᵢ(Σu·dᵢ − mean(dᵢ)Σu) + c,
        /// i.e. u·x̂ᵢ + c, then nan_to_num with float32 semantics as the reference's scores. Leaves pᵢrᵢ in
        /// <paramref name="weights"/> and returns Σ pᵢrᵢ mean(dᵢ); overwrites the accumulators.
        /// </summary>
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        double Softmax(long first, double uSum, float offset, double* dots, double* sums, double* squares, float* weights)
        {
            double max = double.NegativeInfinity;
            for (long a = 0; a < _s; a++)
                for (long j = first + a * _width, end = j + _s; j < end; j++)
                {
                    double mean = sums[j] / channels;
                    double rstd = 1 / Math.Sqrt(Math.Max(squares[j] / channels - mean * mean, 0) + eps);
                    float score = NanToNum((float)(rstd * (dots[j] - mean * uSum) + offset));
                    (sums[j], squares[j], dots[j]) = (mean, rstd, score);
                    max = Math.Max(max, score);
                }
            double total = 0;
            for (long a = 0; a < _s; a++)
                for (long j = first + a * _width, end = j + _s; j < end; j++)
                    total += dots[j] = Math.Exp(dots[j] - max);
            double meanShift = 0;
            for (long a = 0; a < _s; a++)
                for (long j = first + a * _width, end = j + _s; j < end; j++)
                {
                    double weight = dots[j] / total * squares[j];
                    weights[j] = (float)weight;
                    meanShift += weight * sums[j];
                }
            return meanShift;
        }

        /// <summary>
        /// Pass 2 over one block row and a chunk of channels: output[c0 + k, token] = Σᵢ wᵢdᵢ − Σᵢ wᵢ mean(dᵢ) = Σᵢ pᵢx̂ᵢ
        /// over each token's positions (output given at channel c0, first token of the row). The s rows of a block row
        /// are one contiguous run per plane; the sum over them stays in registers.
        /// </summary>
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        void WeightedSums(float* blockRow, int chunk, float* shift, float* weights, double* meanShift, float* partial, float* output)
        {
            long s = _s, width = _width, planeStride = strideC, rowStride = strideH;
            int lanes = Vector<float>.Count;
            long w = 0;
            for (; w + lanes <= width; w += lanes)
                for (int k = 0; k < chunk; k++)
                {
                    float* x = blockRow + k * planeStride + w;
                    float* weight = weights + w;
                    float* x0 = shift + w;
                    Vector<float> sum = default;
                    for (long a = 0; a < s; a++, x += rowStride, weight += width, x0 += width)
                        sum = MultiplyAdd(Load(weight), Load(x) - Load(x0), sum);
                    Store(partial + k * width + w, sum);
                }
            for (; w < width; w++)
                for (int k = 0; k < chunk; k++)
                {
                    float sum = 0;
                    for (long a = 0; a < s; a++)
                        sum += weights[a * width + w] * (blockRow[k * planeStride + a * rowStride + w] - shift[a * width + w]);
                    partial[k * width + w] = sum;
                }
            bool wholeVectors = s % lanes == 0;
            for (int k = 0; k < chunk; k++)
                for (long col = 0; col < _cols; col++)
                {
                    float* segment = partial + k * width + col * s;
                    float total = 0;
                    if (wholeVectors)
                    {
                        Vector<float> v = default;
                        for (long b = 0; b < s; b += lanes) v += Load(segment + b);
                        total = Vector.Sum(v);
                    }
                    else
                        for (long b = 0; b < s; b++) total += segment[b];
                    output[k * _tokens + col] = (float)(total - meanShift[col]);
                }
        }
    }

    /// <summary>torch.nan_to_num for float32: NaN → 0, ±∞ → ±float.MaxValue.</summary>
    static float NanToNum(float x) =>
        float.IsNaN(x) ? 0f : float.IsPositiveInfinity(x) ? float.MaxValue : float.IsNegativeInfinity(x) ? float.MinValue : x;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static Vector<float> MultiplyAdd(Vector<float> a, Vector<float> b, Vector<float> c) =>
#if NET9_0_OR_GREATER
        Vector.FusedMultiplyAdd(a, b, c);
#else
        a * b + c;
#endif

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static Vector<float> Load(float* p) => Unsafe.ReadUnaligned<Vector<float>>(p);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static void Store(float* p, Vector<float> v) => Unsafe.WriteUnaligned(p, v);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static void AddWidened(double* p, Vector<float> v)
    {
        Vector.Widen(v, out var low, out var high);
        Unsafe.WriteUnaligned(p, Unsafe.ReadUnaligned<Vector<double>>(p) + low);
        Unsafe.WriteUnaligned(p + Vector<double>.Count, Unsafe.ReadUnaligned<Vector<double>>(p + Vector<double>.Count) + high);
    }
}
