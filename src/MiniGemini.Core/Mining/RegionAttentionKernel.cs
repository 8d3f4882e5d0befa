using System.Numerics;
using System.Runtime.CompilerServices;
using TorchSharp;
using static TorchSharp.torch;

namespace MiniGemini.Mining;

/// <summary>
/// <see cref="RegionAttention"/> for float32 maps on the CPU, reading the NCHW map in place. Work is split into tiles
/// (a block row × a few tokens, a few MB of the map) that are read twice back to back, so the second read is served by
/// the cache: pass 1 accumulates per position the dot products with u, Σx and Σx² (LayerNorm statistics); the softmax
/// runs per token; pass 2 accumulates the weighted sums. Along W the map is contiguous, so a tile row is a short
/// contiguous run per channel and the inner loops are vectorised over positions.
/// </summary>
internal static unsafe class RegionAttentionKernel
{
    /// <summary>Channels accumulated in float registers before being added to double accumulators.</summary>
    const int ChannelChunk = 8;
    /// <summary>Floats per tile row: with s = 8 a tile is 4 tokens, 2880·8·32·4 B ≈ 3 MB.</summary>
    const long TileWidth = 32;

    public static bool Supports(Tensor map) =>
        map.device_type == DeviceType.CPU && map.dtype == ScalarType.Float32 && map.dim() == 4 && map.stride(3) == 1;

    /// <summary>maps <c>[N, Da, Rows·s, Cols·s]</c>, u <c>[N, T, Da]</c>, c <c>[N, T]</c> → <c>[N, T, Da]</c> (float32).</summary>
    public static Tensor Run(Tensor map, Tensor u, Tensor c, RegionGrid grid, double eps)
    {
        using var scope = NewDisposeScope();
        long n = map.shape[0], channels = map.shape[1];
        var uf = u.to(ScalarType.Float32).contiguous();
        var cf = c.to(ScalarType.Float32).contiguous();
        var output = empty([n, grid.Tokens, channels], ScalarType.Float32);
        var job = new Job(Address(map), map.stride(0), map.stride(1), map.stride(2), channels, grid,
            Address(uf), Address(cf), Address(output), eps);
        long tokensPerTile = Math.Clamp(TileWidth / grid.Block, 1, grid.Cols);
        long tilesPerRow = (grid.Cols + tokensPerTile - 1) / tokensPerTile;
        var options = new ParallelOptions { MaxDegreeOfParallelism = Math.Max(1, get_num_threads()) };
        Parallel.For(0L, n * grid.Rows * tilesPerRow, options,
            () => new Workspace(grid.Block, tokensPerTile),
            (tile, _, workspace) =>
            {
                long image = tile / (grid.Rows * tilesPerRow), row = tile / tilesPerRow % grid.Rows;
                long firstCol = tile % tilesPerRow * tokensPerTile;
                job.Tile(workspace, image, row, firstCol, Math.Min(tokensPerTile, grid.Cols - firstCol));
                return workspace;
            },
            _ => { });
        return output.MoveToOuterDisposeScope();
    }

    static float* Address(Tensor t) => (float*)t.storage<float>().data_ptr() + t.storage_offset();

    /// <summary>Per-thread scratch: accumulators and weights of one tile.</summary>
    sealed class Workspace(long block, long tokens)
    {
        public readonly double[] Dots = new double[block * block * tokens];
        public readonly double[] Sums = new double[block * block * tokens];
        public readonly double[] Squares = new double[block * block * tokens];
        public readonly float[] ExpandedU = new float[ChannelChunk * block * tokens];
        public readonly float[] Weights = new float[block * block * tokens];
        public readonly float[] Products = new float[block * tokens];
        public readonly double[] MeanShift = new double[tokens];
    }

    sealed class Job(float* map, long strideN, long strideC, long strideH, long channels, RegionGrid grid,
        float* u, float* c, float* output, double eps)
    {
        /// <summary>Tokens [firstCol, firstCol + count) of block row <paramref name="row"/> of image <paramref name="image"/>.</summary>
        public void Tile(Workspace ws, long image, long row, long firstCol, long count)
        {
            long s = grid.Block, width = count * s;
            long firstToken = (image * grid.Rows + row) * grid.Cols + firstCol;
            float* tile = map + image * strideN + row * s * strideH + firstCol * s; // channel 0, first row of the tile
            fixed (double* dots = ws.Dots, sums = ws.Sums, squares = ws.Squares, meanShift = ws.MeanShift)
            fixed (float* expandedU = ws.ExpandedU, weights = ws.Weights, products = ws.Products)
            {
                long positions = s * width;
                new Span<double>(dots, (int)positions).Clear();
                new Span<double>(sums, (int)positions).Clear();
                new Span<double>(squares, (int)positions).Clear();
                Moments(tile, u + firstToken * channels, count, dots, sums, squares, expandedU);
                for (long t = 0; t < count; t++)
                    meanShift[t] = Softmax(t, width, u + (firstToken + t) * channels, c[firstToken + t], dots, sums, squares, weights);
                WeightedSums(tile, count, weights, meanShift, products, output + firstToken * channels);
            }
        }

        /// <summary>Pass 1: per tile position, u·x (u of the position's token), Σx and Σx² over all channels.</summary>
        void Moments(float* tile, float* uTile, long count, double* dots, double* sums, double* squares, float* expandedU)
        {
            long s = grid.Block, width = count * s;
            int lanes = Vector<float>.Count;
            for (long c0 = 0; c0 < channels; c0 += ChannelChunk)
            {
                long chunk = Math.Min(ChannelChunk, channels - c0);
                // u laid out like a tile row: expandedU[k, t·s + b] = u[t, c0 + k]
                for (long k = 0; k < chunk; k++)
                    for (long t = 0; t < count; t++)
                        new Span<float>(expandedU + k * width + t * s, (int)s).Fill(uTile[t * channels + c0 + k]);
                for (long a = 0; a < s; a++)
                {
                    float* x0 = tile + c0 * strideC + a * strideH;
                    long at = a * width, w = 0;
                    for (; w + lanes <= width; w += lanes)
                    {
                        Vector<float> dot = default, sum = default, square = default;
                        for (long k = 0; k < chunk; k++)
                        {
                            var x = Load(x0 + k * strideC + w);
                            dot += Load(expandedU + k * width + w) * x;
                            sum += x;
                            square += x * x;
                        }
                        AddWidened(dots + at + w, dot);
                        AddWidened(sums + at + w, sum);
                        AddWidened(squares + at + w, square);
                    }
                    for (; w < width; w++)
                    {
                        float dot = 0, sum = 0, square = 0;
                        for (long k = 0; k < chunk; k++)
                        {
                            float x = x0[k * strideC + w];
                            dot += expandedU[k * width + w] * x;
                            sum += x;
                            square += x * x;
                        }
                        dots[at + w] += dot;
                        sums[at + w] += sum;
                        squares[at + w] += square;
                    }
                }
            }
        }

        /// <summary>
        /// Scores of token t's positions, nan_to_num with float32 semantics as the reference's scores, softmax; leaves
        /// pᵢrᵢ in <paramref name="weights"/> and returns Σ pᵢrᵢμᵢ. The statistics are overwritten with μ and r.
        /// </summary>
        double Softmax(long t, long width, float* uToken, float offset, double* dots, double* sums, double* squares, float* weights)
        {
            long s = grid.Block;
            double uSum = 0;
            for (long k = 0; k < channels; k++) uSum += uToken[k];
            double max = double.NegativeInfinity;
            for (long a = 0; a < s; a++)
                for (long j = a * width + t * s, end = j + s; j < end; j++)
                {
                    double mean = sums[j] / channels;
                    double variance = Math.Max(squares[j] / channels - mean * mean, 0);
                    double rstd = 1 / Math.Sqrt(variance + eps);
                    float score = NanToNum((float)(rstd * (dots[j] - mean * uSum) + offset));
                    sums[j] = mean;
                    squares[j] = rstd;
                    dots[j] = score;
                    max = Math.Max(max, score);
                }
            double total = 0;
            for (long a = 0; a < s; a++)
                for (long j = a * width + t * s, end = j + s; j < end; j++)
                    total += dots[j] = Math.Exp(dots[j] - max);
            double meanShift = 0;
            for (long a = 0; a < s; a++)
                for (long j = a * width + t * s, end = j + s; j < end; j++)
                {
                    double weight = dots[j] / total * squares[j];
                    weights[j] = (float)weight;
                    meanShift += weight * sums[j];
                }
            return meanShift;
        }

        /// <summary>Pass 2: output[t, c] = Σᵢ wᵢ x[c, i] − Σᵢ wᵢμᵢ over token t's positions, for every channel.</summary>
        void WeightedSums(float* tile, long count, float* weights, double* meanShift, float* products, float* output)
        {
            long s = grid.Block, width = count * s;
            int lanes = Vector<float>.Count;
            for (long ch = 0; ch < channels; ch++)
            {
                float* x0 = tile + ch * strideC;
                long w = 0;
                for (; w + lanes <= width; w += lanes)
                {
                    Vector<float> product = default;
                    for (long a = 0; a < s; a++) product += Load(weights + a * width + w) * Load(x0 + a * strideH + w);
                    Store(products + w, product);
                }
                for (; w < width; w++)
                {
                    float product = 0;
                    for (long a = 0; a < s; a++) product += weights[a * width + w] * x0[a * strideH + w];
                    products[w] = product;
                }
                for (long t = 0; t < count; t++)
                {
                    float total = 0;
                    for (long b = t * s, end = b + s; b < end; b++) total += products[b];
                    output[t * channels + ch] = (float)(total - meanShift[t]);
                }
            }
        }
    }

    /// <summary>torch.nan_to_num for float32: NaN → 0, ±∞ → ±float.MaxValue.</summary>
    static float NanToNum(float x) =>
        float.IsNaN(x) ? 0f : float.IsPositiveInfinity(x) ? float.MaxValue : float.IsNegativeInfinity(x) ? float.MinValue : x;

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
