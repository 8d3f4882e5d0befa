using System.Runtime.CompilerServices;

namespace MiniGemini.Vision;

/// <summary>
/// Pillow's 8-bit bicubic resize (<c>Image.resize(size, BICUBIC)</c>, libImaging/Resample.c), reproduced to the byte.
/// Two separable passes, horizontal then vertical. Each output pixel takes a cubic (a = −0.5) filter
/// whose support grows with the downscale factor, so it antialiases. The filter weights are normalized per output
/// pixel and then turned into 22-bit fixed point. Each pass rounds and clips to uint8. MGM's CLIP processor resizes
/// this way, and general-purpose resamplers (ImageSharp, torch without antialias) differ from it by whole levels.
/// </summary>
internal static class PillowResample
{
    // 8 bits for the result, 2 for the overflow of negative lobes and sums above 1.
    const int PrecisionBits = 32 - 8 - 2;
    const double BicubicSupport = 2.0;

    public static ImageRgb8 Bicubic(ImageRgb8 source, int width, int height)
    {
        if (width <= 0 || height <= 0) throw new ArgumentOutOfRangeException(nameof(width), $"Target size {width}×{height} must be positive.");
        bool horizontal = width != source.Width;
        bool vertical = height != source.Height;
        if (!horizontal && !vertical) return new ImageRgb8(width, height, (byte[])source.Pixels.Clone());

        var rows = Coefficients.For(source.Height, height);
        var image = source;
        int firstRow = 0;
        if (horizontal)
        {
            // Only the rows the vertical pass will read are resampled horizontally.
            firstRow = vertical ? rows.Start[0] : 0;
            int lastRow = vertical ? rows.Start[height - 1] + rows.Count[height - 1] : source.Height;
            image = Horizontal(source, Coefficients.For(source.Width, width), firstRow, lastRow - firstRow);
        }
        return vertical ? Vertical(image, rows, firstRow) : image;
    }

    static ImageRgb8 Horizontal(ImageRgb8 source, Coefficients columns, int firstRow, int rowCount)
    {
        var result = new ImageRgb8(columns.OutSize, rowCount);
        int inStride = source.Width * 3, outStride = columns.OutSize * 3;
        Parallel.For(0, rowCount, y => HorizontalRow(
            source.Pixels.AsSpan((y + firstRow) * inStride, inStride), result.Pixels.AsSpan(y * outStride, outStride), columns));
        return result;
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void HorizontalRow(ReadOnlySpan<byte> input, Span<byte> output, Coefficients columns)
    {
        for (int x = 0; x < columns.OutSize; x++)
        {
            var taps = input.Slice(columns.Start[x] * 3, columns.Count[x] * 3);
            var weights = columns.Weights.AsSpan(x * columns.KernelSize, columns.Count[x]);
            int r = Half, g = Half, b = Half;
            for (int i = 0, at = 0; i < weights.Length; i++, at += 3)
            {
                r += taps[at] * weights[i];
                g += taps[at + 1] * weights[i];
                b += taps[at + 2] * weights[i];
            }
            output[3 * x] = Clip8(r);
            output[3 * x + 1] = Clip8(g);
            output[3 * x + 2] = Clip8(b);
        }
    }

    // rows.Start is relative to the source image; the horizontally resampled image starts at source row firstRow.
    static ImageRgb8 Vertical(ImageRgb8 source, Coefficients rows, int firstRow)
    {
        var result = new ImageRgb8(source.Width, rows.OutSize);
        int stride = source.Width * 3;
        // One row of sums per worker, not per output row.
        Parallel.For(0, rows.OutSize, () => new int[stride], (y, _, sums) =>
        {
            VerticalRow(source.Pixels.AsSpan((rows.Start[y] - firstRow) * stride, rows.Count[y] * stride), stride,
                rows.Weights.AsSpan(y * rows.KernelSize, rows.Count[y]), result.Pixels.AsSpan(y * stride, stride), sums);
            return sums;
        }, _ => { });
        return result;
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void VerticalRow(ReadOnlySpan<byte> inputRows, int stride, ReadOnlySpan<int> weights, Span<byte> output, int[] sums)
    {
        // Integer sums: the tap order does not change the result.
        Array.Fill(sums, Half);
        for (int i = 0; i < weights.Length; i++)
        {
            var row = inputRows.Slice(i * stride, stride);
            int weight = weights[i];
            for (int c = 0; c < row.Length; c++) sums[c] += row[c] * weight;
        }
        for (int c = 0; c < output.Length; c++) output[c] = Clip8(sums[c]);
    }

    const int Half = 1 << (PrecisionBits - 1);

    static byte Clip8(int sum)
    {
        int value = sum >> PrecisionBits; // arithmetic shift: floors, as Pillow's lookup index does
        return value < 0 ? (byte)0 : value > 255 ? (byte)255 : (byte)value;
    }

    static double Cubic(double x)
    {
        const double a = -0.5;
        if (x < 0.0) x = -x;
        if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
        if (x < 2.0) return (((x - 5) * x + 8) * x - 4) * a;
        return 0.0;
    }

    /// <summary>Per output pixel along one axis: first input index, tap count and fixed-point weights.</summary>
    sealed class Coefficients
    {
        public required int OutSize { get; init; }
        public required int KernelSize { get; init; }
        public required int[] Start { get; init; }
        public required int[] Count { get; init; }
        public required int[] Weights { get; init; } // [OutSize, KernelSize]

        // Pillow's precompute_coeffs + normalize_coeffs_8bpc for the box (0, inSize); the double arithmetic follows
        // Pillow's expression order so that every weight rounds to the same integer.
        public static Coefficients For(int inSize, int outSize)
        {
            double scale = (double)inSize / outSize;
            double filterScale = Math.Max(scale, 1.0);
            double support = BicubicSupport * filterScale;
            int kernelSize = (int)Math.Ceiling(support) * 2 + 1;
            var start = new int[outSize];
            var count = new int[outSize];
            var weights = new int[outSize * kernelSize];
            var k = new double[kernelSize];
            double inverse = 1.0 / filterScale;
            for (int xx = 0; xx < outSize; xx++)
            {
                double center = (xx + 0.5) * scale;
                int xmin = Math.Max((int)(center - support + 0.5), 0);
                int xmax = Math.Min((int)(center + support + 0.5), inSize) - xmin;
                double total = 0.0;
                for (int x = 0; x < xmax; x++)
                {
                    k[x] = Cubic((x + xmin - center + 0.5) * inverse);
                    total += k[x];
                }
                for (int x = 0; x < xmax; x++)
                {
                    double w = total != 0.0 ? k[x] / total : k[x];
                    weights[xx * kernelSize + x] = w < 0 ? (int)(-0.5 + w * (1 << PrecisionBits)) : (int)(0.5 + w * (1 << PrecisionBits));
                }
                start[xx] = xmin;
                count[xx] = xmax;
            }
            return new Coefficients { OutSize = outSize, KernelSize = kernelSize, Start = start, Count = count, Weights = weights };
        }
    }
}
