using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using MiniGemini.Checkpoints;
using TorchSharp;
using static TorchSharp.torch;

namespace MiniGemini.Modeling;

/// <summary>
/// <see cref="RegionAttention"/> for float32 and bfloat16 maps on the CPU, reading the NCHW map in place, twice.
/// <para>Memory order decides the speed: a token's region is s short runs in each of Da channel planes, so the map is
/// swept the way it lies instead, a band of whole block rows at a time, a few channel planes side by side, each plane
/// read row after row (long sequential runs that the prefetchers follow). Pass 1 gathers per HR position the dot
/// product with its token's u and the LayerNorm moments; the softmax runs per token of the band; pass 2 sweeps the
/// band again for the weighted sums. Bands are independent and run in parallel.</para>
/// <para>Every position is accumulated relative to its own channel-0 value x₀ (d = x − x₀): sums of d stay near the
/// spread of the features, so Σd² − (Σd)²/Da keeps its digits even where |μ| ≫ σ, and so do the dot products.</para>
/// <para>The map can also be read at half scale (<see cref="HalfScale{T, TElements}"/>, MGM's HD global view): each position is then
/// the bilinear 1/2 downsample of the full map, computed as it is read, so the downsampled map is never stored.
/// <see cref="RunWithHalfScale"/> attends at both scales in the same sweeps: the half-scale reads find the rows that the
/// full-scale reads have just brought into the cache, so the map comes from memory twice instead of four times.</para>
/// <para>A bfloat16 map is widened to float32 in registers as it is read (<see cref="BFloat16Elements"/>): exact, so the
/// result has the bits of the same kernel over a float32 copy of the map, without that copy (twice the map's bytes)
/// and with half the bytes to read.</para>
/// </summary>
internal static unsafe class RegionAttentionKernel
{
    /// <summary>Channel planes swept side by side; their partial sums stay in float registers.</summary>
    const int ChannelChunk = 8;
    /// <summary>Bands per thread: enough to balance, few enough that each plane is read in long runs.</summary>
    const int BandsPerThread = 2;

    public static bool Supports(Tensor map) =>
        map.device_type == DeviceType.CPU && map.dtype is ScalarType.Float32 or ScalarType.BFloat16 && map.dim() == 4 && map.stride(3) == 1;

    /// <summary>
    /// maps <c>[N, Da, Rows·s, Cols·s]</c> (or, with <paramref name="halfScale"/>, <c>[N, Da, 2·Rows·s, 2·Cols·s]</c> read as
    /// its bilinear 1/2 downsample), u <c>[N, T, Da]</c>, c <c>[N, T]</c> → <c>[N, T, Da]</c> (float32).
    /// </summary>
    public static Tensor Run(Tensor map, Tensor u, Tensor c, RegionGrid grid, double eps, bool halfScale = false)
    {
        using var scope = NewDisposeScope();
        var output = Output(map, grid);
        var tensors = Describe(map, u, c, output, eps);
        if (map.dtype == ScalarType.BFloat16) Sweep<ushort, BFloat16Elements>(tensors, grid, halfScale, map.shape[0]);
        else Sweep<float, Float32Elements>(tensors, grid, halfScale, map.shape[0]);
        return output.transpose(1, 2).MoveToOuterDisposeScope();                               // [N, T, Da]
    }

    /// <summary>
    /// <see cref="Run"/> over maps <c>[N, Da, Rows·s, Cols·s]</c> for <paramref name="grid"/>'s tokens and over their
    /// bilinear 1/2 downsample for <paramref name="halfGrid"/>'s, in one pair of sweeps. The half grid must cover the
    /// same map with the same block: <c>grid = (2·halfGrid.Rows, 2·halfGrid.Cols, halfGrid.Block)</c>.
    /// Each result is the same, bit for bit, as that of <see cref="Run"/> alone.
    /// </summary>
    public static (Tensor Full, Tensor Half) RunWithHalfScale(Tensor map, Tensor u, Tensor c, RegionGrid grid,
        Tensor halfU, Tensor halfC, RegionGrid halfGrid, double eps)
    {
        if (grid != halfGrid with { Rows = 2 * halfGrid.Rows, Cols = 2 * halfGrid.Cols })
            throw new ArgumentException($"The half-scale grid {halfGrid} does not cover the same map as {grid}.", nameof(halfGrid));
        using var scope = NewDisposeScope();
        var (output, halfOutput) = (Output(map, grid), Output(map, halfGrid));
        var (full, half) = (Describe(map, u, c, output, eps), Describe(map, halfU, halfC, halfOutput, eps));
        if (map.dtype == ScalarType.BFloat16) SweepBoth<ushort, BFloat16Elements>(full, grid, half, halfGrid, map.shape[0]);
        else SweepBoth<float, Float32Elements>(full, grid, half, halfGrid, map.shape[0]);
        return (output.transpose(1, 2).MoveToOuterDisposeScope(), halfOutput.transpose(1, 2).MoveToOuterDisposeScope()); // [N, T, Da] each
    }

    static Tensor Output(Tensor map, RegionGrid grid) => empty([map.shape[0], map.shape[1], grid.Tokens], ScalarType.Float32); // [N, Da, T]

    /// <summary>The addresses a sweep needs; the tensors made here live in the caller's dispose scope.</summary>
    static Tensors Describe(Tensor map, Tensor u, Tensor c, Tensor output, double eps)
    {
        var uT = u.to(ScalarType.Float32).transpose(1, 2).contiguous();                       // [N, Da, T]
        var uSums = u.sum(-1, type: ScalarType.Float64);                                       // [N, T]
        var offsets = c.to(ScalarType.Float32).contiguous();                                   // [N, T]
        return new Tensors(Address<byte>(map), map.stride(0), map.stride(1), map.stride(2), map.shape[1],
            Address<float>(uT), Address<double>(uSums), Address<float>(offsets), Address<float>(output), eps);
    }

    /// <summary>Block rows per band, bands per image, threads: a few bands per thread to balance the load.</summary>
    static (long RowsPerBand, long BandsPerImage, int Threads) Bands(long blockRows, long images)
    {
        int threads = Math.Max(1, get_num_threads());
        long rowsPerBand = Math.Clamp(blockRows * images / (BandsPerThread * threads), 1, blockRows);
        return (rowsPerBand, (blockRows + rowsPerBand - 1) / rowsPerBand, threads);
    }

    static void Sweep<T, TElements>(Tensors tensors, RegionGrid grid, bool halfScale, long images)
        where T : unmanaged where TElements : struct, IMapElements<T>
    {
        if (halfScale) Sweep(new Job<HalfScale<T, TElements>, T>(tensors, grid), images, grid);
        else Sweep(new Job<FullScale<T, TElements>, T>(tensors, grid), images, grid);
    }

    static void Sweep<TRows, T>(Job<TRows, T> job, long images, RegionGrid grid) where TRows : struct, IMapRows<T> where T : unmanaged
    {
        var (rowsPerBand, bandsPerImage, threads) = Bands(grid.Rows, images);
        Parallel.For(0L, images * bandsPerImage, new ParallelOptions { MaxDegreeOfParallelism = threads },
            () => job.CreateWorkspace(rowsPerBand),
            (band, _, ws) =>
            {
                long image = band / bandsPerImage, firstRow = band % bandsPerImage * rowsPerBand;
                long rows = Math.Min(rowsPerBand, grid.Rows - firstRow);
                job.Begin(ws, image, firstRow, rows);
                for (long c0 = 0; c0 < job.Channels; c0 += ChannelChunk)
                    for (long r = 0; r < rows; r++) job.Moments(ws, c0, r);
                job.Softmaxes(ws);
                for (long c0 = 0; c0 < job.Channels; c0 += ChannelChunk)
                    for (long r = 0; r < rows; r++) job.WeightedSums(ws, c0, r);
                return ws;
            },
            ws => ws.Dispose());
    }

    /// <summary>
    /// Both jobs band by band: half-scale block row r covers full-scale block rows 2r and 2r + 1, and reads a chunk of
    /// channel planes of their 2s map rows right after the full-scale job has (a few hundred KB: still in L2).
    /// </summary>
    static void SweepBoth<T, TElements>(Tensors fullTensors, RegionGrid grid, Tensors halfTensors, RegionGrid halfGrid, long images)
        where T : unmanaged where TElements : struct, IMapElements<T>
    {
        var full = new Job<FullScale<T, TElements>, T>(fullTensors, grid);
        var half = new Job<HalfScale<T, TElements>, T>(halfTensors, halfGrid);
        var (rowsPerBand, bandsPerImage, threads) = Bands(halfGrid.Rows, images);
        Parallel.For(0L, images * bandsPerImage, new ParallelOptions { MaxDegreeOfParallelism = threads },
            () => (Full: full.CreateWorkspace(2 * rowsPerBand), Half: half.CreateWorkspace(rowsPerBand)),
            (band, _, ws) =>
            {
                long image = band / bandsPerImage, firstRow = band % bandsPerImage * rowsPerBand;
                long rows = Math.Min(rowsPerBand, halfGrid.Rows - firstRow);
                full.Begin(ws.Full, image, 2 * firstRow, 2 * rows);
                half.Begin(ws.Half, image, firstRow, rows);
                for (long c0 = 0; c0 < full.Channels; c0 += ChannelChunk)
                    for (long r = 0; r < rows; r++)
                    {
                        full.Moments(ws.Full, c0, 2 * r);
                        full.Moments(ws.Full, c0, 2 * r + 1);
                        half.Moments(ws.Half, c0, r);
                    }
                full.Softmaxes(ws.Full);
                half.Softmaxes(ws.Half);
                for (long c0 = 0; c0 < full.Channels; c0 += ChannelChunk)
                    for (long r = 0; r < rows; r++)
                    {
                        full.WeightedSums(ws.Full, c0, 2 * r);
                        full.WeightedSums(ws.Full, c0, 2 * r + 1);
                        half.WeightedSums(ws.Half, c0, r);
                    }
                return ws;
            },
            ws =>
            {
                ws.Full.Dispose();
                ws.Half.Dispose();
            });
    }

    static T* Address<T>(Tensor t) where T : unmanaged => (T*)TensorMemory.Address(t);

    /// <summary>How map elements of type <typeparamref name="T"/> become float32 lanes.</summary>
    internal interface IMapElements<T> where T : unmanaged
    {
        /// <summary>The <c>Vector&lt;float&gt;.Count</c> elements from <paramref name="p"/> on.</summary>
        static abstract Vector<float> Load(T* p);
        static abstract float Load1(T* p);
    }

    internal readonly struct Float32Elements : IMapElements<float>
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector<float> Load(float* p) => Unsafe.ReadUnaligned<Vector<float>>(p);

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static float Load1(float* p) => *p;
    }

    /// <summary>bfloat16 bits: the upper half of a float32's, so widening is a shift and exact.</summary>
    internal readonly struct BFloat16Elements : IMapElements<ushort>
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector<float> Load(ushort* p)
        {
            if (Vector<float>.Count == 8 && Vector256.IsHardwareAccelerated)
                return Vector256.ShiftLeft(Vector256.WidenLower(Vector128.Load(p).ToVector256Unsafe()), 16).AsSingle().AsVector();
            Span<float> values = stackalloc float[Vector<float>.Count];
            for (int i = 0; i < values.Length; i++) values[i] = Load1(p + i);
            return new Vector<float>(values);
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static float Load1(ushort* p) => BFloat16Bits.Widen(*p);
    }

    /// <summary>How a map row is read: <c>Load(row, w)</c> gives positions w… of the row that starts at <c>row</c>.</summary>
    internal interface IMapRows<T> where T : unmanaged
    {
        /// <summary>Map rows one logical row apart, for a map with full-resolution row stride <paramref name="strideH"/>.</summary>
        static abstract long RowStride(long strideH);
        static abstract Vector<float> Load(T* row, long w, long strideH);
        static abstract float Load1(T* row, long w, long strideH);
    }

    /// <summary>The map as it is.</summary>
    internal readonly struct FullScale<T, TElements> : IMapRows<T> where T : unmanaged where TElements : struct, IMapElements<T>
    {
        public static long RowStride(long strideH) => strideH;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector<float> Load(T* row, long w, long strideH) => TElements.Load(row + w);

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static float Load1(T* row, long w, long strideH) => TElements.Load1(row + w);
    }

    /// <summary>
    /// The map bilinearly downsampled by 1/2 (align_corners = false): output (i, j) samples input (2i + ½, 2j + ½), so
    /// all four weights are ½·½ and it is ((a + b) + (c + d)) / 4 over the 2×2 block, the order of torch's CPU kernel.
    /// </summary>
    internal readonly struct HalfScale<T, TElements> : IMapRows<T> where T : unmanaged where TElements : struct, IMapElements<T>
    {
        public static long RowStride(long strideH) => 2 * strideH;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector<float> Load(T* row, long w, long strideH)
        {
            T* top = row + 2 * w, bottom = top + strideH;
            if (Vector<float>.Count == 8 && Vector256.IsHardwareAccelerated)
            {
                // Evens to the lower half, odds to the upper: lower + upper = the sums of 4 horizontal pairs.
                var t0 = Vector256.Shuffle(TElements.Load(top).AsVector256(), Vector256.Create(0, 2, 4, 6, 1, 3, 5, 7));
                var t1 = Vector256.Shuffle(TElements.Load(top + 8).AsVector256(), Vector256.Create(0, 2, 4, 6, 1, 3, 5, 7));
                var b0 = Vector256.Shuffle(TElements.Load(bottom).AsVector256(), Vector256.Create(0, 2, 4, 6, 1, 3, 5, 7));
                var b1 = Vector256.Shuffle(TElements.Load(bottom + 8).AsVector256(), Vector256.Create(0, 2, 4, 6, 1, 3, 5, 7));
                var low = (t0.GetLower() + t0.GetUpper()) + (b0.GetLower() + b0.GetUpper());
                var high = (t1.GetLower() + t1.GetUpper()) + (b1.GetLower() + b1.GetUpper());
                return (Vector256.Create(low, high) * 0.25f).AsVector();
            }
            Span<float> values = stackalloc float[Vector<float>.Count];
            for (int i = 0; i < values.Length; i++) values[i] = Load1(row, w + i, strideH);
            return new Vector<float>(values);
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static float Load1(T* row, long w, long strideH)
        {
            T* top = row + 2 * w, bottom = top + strideH;
            return ((TElements.Load1(top) + TElements.Load1(top + 1)) + (TElements.Load1(bottom) + TElements.Load1(bottom + 1))) * 0.25f;
        }
    }

    /// <summary>Addresses and strides of the tensors a sweep reads and writes.</summary>
    readonly struct Tensors(void* map, long strideN, long strideC, long strideH, long channels,
        float* uT, double* uSums, float* offsets, float* output, double eps)
    {
        public readonly void* Map = map;
        public readonly float* UT = uT, Offsets = offsets, Output = output;
        public readonly double* USums = uSums;
        public readonly long StrideN = strideN, StrideC = strideC, StrideH = strideH, Channels = channels;
        public readonly double Eps = eps;
    }

    /// <summary>Per-thread scratch for one band of block rows, in native memory (no managed garbage per call).</summary>
    sealed class Workspace : IDisposable
    {
        readonly long _positions;
        readonly void* _memory;

        public Workspace(long blockRows, RegionGrid grid)
        {
            _positions = blockRows * grid.Block * grid.Width;
            long doubles = 3 * _positions + blockRows * grid.Cols;
            long floats = 2 * _positions + 2 * ChannelChunk * grid.Width;
            _memory = NativeMemory.AlignedAlloc((nuint)(doubles * sizeof(double) + floats * sizeof(float)), 64);
            var d = (double*)_memory;
            Dots = d;
            Sums = d + _positions;
            Squares = d + 2 * _positions;
            MeanShift = d + 3 * _positions;
            var f = (float*)(d + doubles);
            Shift = f;
            Weights = f + _positions;
            RowU = f + 2 * _positions;
            Partial = RowU + ChannelChunk * grid.Width;
        }

        /// <summary>Per position: x₀, its channel-0 value; the moments below are of d = x − x₀.</summary>
        public float* Shift { get; }
        /// <summary>Per position: Σ u·d, Σ d, Σ d²; after the softmax: exp(score − max), mean(d), 1/σ.</summary>
        public double* Dots { get; }
        public double* Sums { get; }
        public double* Squares { get; }
        /// <summary>Per position: the softmax weight over σ, pᵢrᵢ.</summary>
        public float* Weights { get; }
        /// <summary>Per token: Σ pᵢrᵢ mean(dᵢ).</summary>
        public double* MeanShift { get; }
        /// <summary>u of a chunk of channels spread over a map row: [k, w] = u[token of column w, c0 + k].</summary>
        public float* RowU { get; }
        /// <summary>Pass-2 sums of a chunk of channels over the s rows of a block row: [k, w].</summary>
        public float* Partial { get; }

        /// <summary>The band in progress: its first map row (channel 0), u, output (channel 0, first token), first token, block rows.</summary>
        public void* Band;
        public float* U, Output;
        public long FirstToken, Rows;

        public void ClearMoments() => new Span<double>(Dots, (int)(3 * _positions)).Clear();

        public void Dispose() => NativeMemory.AlignedFree(_memory);
    }

    sealed class Job<TRows, T>(Tensors t, RegionGrid grid) where TRows : struct, IMapRows<T> where T : unmanaged
    {
        readonly T* _map = (T*)t.Map;
        readonly long _strideN = t.StrideN, _strideC = t.StrideC, _strideH = t.StrideH, _rowStride = TRows.RowStride(t.StrideH);
        readonly long _channels = t.Channels, _s = grid.Block, _cols = grid.Cols, _width = grid.Width, _tokens = grid.Tokens;

        public long Channels => _channels;

        public Workspace CreateWorkspace(long blockRows) => new(blockRows, grid);

        /// <summary>Starts block rows [firstRow, firstRow + rows) of one image: clears the moments, keeps every x₀.</summary>
        public void Begin(Workspace ws, long image, long firstRow, long rows)
        {
            ws.Band = _map + image * _strideN + firstRow * _s * _rowStride;
            ws.U = t.UT + image * _channels * _tokens + firstRow * _cols;
            ws.Output = t.Output + image * _channels * _tokens + firstRow * _cols;
            ws.FirstToken = image * _tokens + firstRow * _cols;
            ws.Rows = rows;
            ws.ClearMoments();
            for (long h = 0; h < rows * _s; h++)
                CopyRow(Band(ws) + h * _rowStride, ws.Shift + h * _width);
        }

        /// <summary>Pass 1 for block row <paramref name="r"/> of the band and the channel chunk at <paramref name="c0"/>.</summary>
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        public void Moments(Workspace ws, long c0, long r)
        {
            int chunk = (int)Math.Min(ChannelChunk, _channels - c0);
            SpreadU(ws.U + c0 * _tokens + r * _cols, chunk, ws.RowU);
            for (long h = r * _s; h < (r + 1) * _s; h++)
                Moments(Band(ws) + c0 * _strideC + h * _rowStride, chunk, ws.RowU,
                    ws.Shift + h * _width, ws.Dots + h * _width, ws.Sums + h * _width, ws.Squares + h * _width);
        }

        /// <summary>The softmax of every token of the band, once pass 1 has seen all channels.</summary>
        public void Softmaxes(Workspace ws)
        {
            for (long r = 0; r < ws.Rows; r++)
                for (long col = 0; col < _cols; col++)
                {
                    long token = ws.FirstToken + r * _cols + col;
                    ws.MeanShift[r * _cols + col] = Softmax(r * _s * _width + col * _s, t.USums[token], t.Offsets[token], ws);
                }
        }

        /// <summary>Pass 2 for block row <paramref name="r"/> of the band and the channel chunk at <paramref name="c0"/>.</summary>
        public void WeightedSums(Workspace ws, long c0, long r)
        {
            int chunk = (int)Math.Min(ChannelChunk, _channels - c0);
            long at = r * _s * _width;
            WeightedSums(Band(ws) + c0 * _strideC + r * _s * _rowStride, chunk, ws.Shift + at, ws.Weights + at,
                ws.MeanShift + r * _cols, ws.Partial, ws.Output + c0 * _tokens + r * _cols);
        }

        static T* Band(Workspace ws) => (T*)ws.Band;

        void CopyRow(T* row, float* target)
        {
            int lanes = Vector<float>.Count;
            long w = 0;
            for (; w + lanes <= _width; w += lanes) Store(target + w, TRows.Load(row, w, _strideH));
            for (; w < _width; w++) target[w] = TRows.Load1(row, w, _strideH);
        }

        /// <summary>rowU[k, w] = u[c0 + k, token of column w] for one block row (u given at channel c0, first token of the row).</summary>
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        void SpreadU(float* u, int chunk, float* rowU)
        {
            for (int k = 0; k < chunk; k++)
                for (long col = 0; col < _cols; col++)
                    new Span<float>(rowU + k * _width + col * _s, (int)_s).Fill(u[k * _tokens + col]);
        }

        /// <summary>
        /// Pass 1 over one map row and a chunk of channels: Σ u·d, Σ d, Σ d² added to the row's accumulators.
        /// Two vectors of each plane at a time (a cache line of float32, half of one of bfloat16): the planes are a
        /// multiple of 4 KB apart and compete for the same L1 sets, so a line is used up before the next plane's line
        /// can evict it.
        /// </summary>
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        void Moments(T* row, int chunk, float* rowU, float* shift, double* dots, double* sums, double* squares)
        {
            long width = _width, planeStride = _strideC, strideH = _strideH;
            int lanes = Vector<float>.Count;
            long w = 0;
            for (; w + 2 * lanes <= width; w += 2 * lanes)
            {
                var x00 = Load(shift + w);
                var x01 = Load(shift + w + lanes);
                Vector<float> dot0 = default, sum0 = default, square0 = default, dot1 = default, sum1 = default, square1 = default;
                T* x = row;
                float* uk = rowU + w;
                for (int k = 0; k < chunk; k++, x += planeStride, uk += width)
                {
                    var d0 = TRows.Load(x, w, strideH) - x00;
                    var d1 = TRows.Load(x, w + lanes, strideH) - x01;
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
                    float d = TRows.Load1(row + k * planeStride, w, strideH) - shift[w];
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
        /// i.e. u·x̂ᵢ + c, then nan_to_num with float32 semantics as the reference's scores. Leaves pᵢrᵢ in the workspace
        /// weights and returns Σ pᵢrᵢ mean(dᵢ); overwrites the accumulators.
        /// </summary>
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        double Softmax(long first, double uSum, float offset, Workspace ws)
        {
            double* dots = ws.Dots, sums = ws.Sums, squares = ws.Squares;
            float* weights = ws.Weights;
            double max = double.NegativeInfinity;
            for (long a = 0; a < _s; a++)
                for (long j = first + a * _width, end = j + _s; j < end; j++)
                {
                    double mean = sums[j] / _channels;
                    double rstd = 1 / Math.Sqrt(Math.Max(squares[j] / _channels - mean * mean, 0) + t.Eps);
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
        /// over each token's positions (output given at channel c0, first token of the row). Row by row, the planes of
        /// the chunk side by side, a cache line at a time; per-column sums over the rows collect in <paramref name="partial"/>.
        /// </summary>
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        void WeightedSums(T* blockRow, int chunk, float* shift, float* weights, double* meanShift, float* partial, float* output)
        {
            long s = _s, width = _width, planeStride = _strideC, rowStride = _rowStride, strideH = _strideH;
            int lanes = Vector<float>.Count;
            new Span<float>(partial, (int)(chunk * width)).Clear();
            for (long a = 0; a < s; a++)
            {
                float* weight = weights + a * width;
                float* x0 = shift + a * width;
                for (int k = 0; k < chunk; k++)
                {
                    T* x = blockRow + k * planeStride + a * rowStride;
                    float* sum = partial + k * width;
                    long w = 0;
                    for (; w + 2 * lanes <= width; w += 2 * lanes)
                    {
                        Store(sum + w, MultiplyAdd(Load(weight + w), TRows.Load(x, w, strideH) - Load(x0 + w), Load(sum + w)));
                        Store(sum + w + lanes, MultiplyAdd(Load(weight + w + lanes), TRows.Load(x, w + lanes, strideH) - Load(x0 + w + lanes), Load(sum + w + lanes)));
                    }
                    for (; w < width; w++) sum[w] += weight[w] * (TRows.Load1(x, w, strideH) - x0[w]);
                }
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
