using System.Runtime.InteropServices;
using SixLabors.ImageSharp;
using SixLabors.ImageSharp.Formats.Png;
using SixLabors.ImageSharp.PixelFormats;

namespace MiniGemini.Training.DetailShapes;

/// <summary>
/// Draws a <see cref="Scene"/> exactly as the spec says, without anti-aliasing: the background, then each object by
/// the pixel rule (pixel (x, y) is tested at its centre (x + 0.5, y + 0.5), with r = s / 2), then its digit in the
/// ink colour over it, the 8 × 14 box's top-left pixel at (round(gx) − 4, round(gy) − 7), rounding half away from zero,
/// where (gx, gy) is the centroid ((cx, cy + s / 6) for the triangle).
/// </summary>
internal static class SceneRenderer
{
    /// <summary>Side of the rendered picture (448).</summary>
    public const int Size = DetailShapesSpec.ImageSize;

    /// <summary>Bytes of one picture as packed RGB, row after row: 448 × 448 × 3.</summary>
    public const int RgbByteCount = Size * Size * 3;

    static readonly PngEncoder Png = new()
    {
        ColorType = PngColorType.Rgb,
        BitDepth = PngBitDepth.Bit8,
    };

    /// <summary>The scene as a new 448 × 448 image.</summary>
    public static Image<Rgb24> Render(Scene scene)
    {
        var image = new Image<Rgb24>(Size, Size);
        try
        {
            if (image.DangerousTryGetSinglePixelMemory(out var memory))
                RenderInto(scene, MemoryMarshal.AsBytes(memory.Span));
            else
            {
                var rgb = new byte[RgbByteCount];
                RenderInto(scene, rgb);
                image.ProcessPixelRows(rows =>
                {
                    for (int y = 0; y < Size; y++)
                        MemoryMarshal.Cast<byte, Rgb24>(rgb.AsSpan(y * Size * 3, Size * 3)).CopyTo(rows.GetRowSpan(y));
                });
            }
            return image;
        }
        catch
        {
            image.Dispose();
            throw;
        }
    }

    /// <summary>The scene encoded as an 8-bit RGB PNG.</summary>
    public static byte[] RenderPng(Scene scene)
    {
        using var image = Render(scene);
        using var stream = new MemoryStream();
        image.SaveAsPng(stream, Png);
        return stream.ToArray();
    }

    /// <summary>
    /// Draws the scene into packed RGB bytes (<see cref="RgbByteCount"/> of them, row-major, 3 per pixel), for callers
    /// that turn pictures into tensors without an image object.
    /// </summary>
    /// <exception cref="ArgumentException"><paramref name="rgb"/> is not exactly <see cref="RgbByteCount"/> long.</exception>
    public static void RenderInto(Scene scene, Span<byte> rgb)
    {
        ArgumentNullException.ThrowIfNull(scene);
        if (rgb.Length != RgbByteCount)
            throw new ArgumentException($"The buffer holds {rgb.Length} bytes; a {Size} × {Size} RGB picture needs {RgbByteCount}.", nameof(rgb));
        var pixels = MemoryMarshal.Cast<byte, Rgb24>(rgb);
        pixels.Fill(scene.Background);
        foreach (var obj in scene.Objects)
        {
            DrawShape(pixels, obj);
            DrawDigit(pixels, obj);
        }
    }

    /// <summary>The shape's centroid (gx, gy): the centre, or (cx, cy + s / 6) for the triangle.</summary>
    public static (double X, double Y) Centroid(SceneObject obj)
    {
        ArgumentNullException.ThrowIfNull(obj);
        return obj.Shape == ShapeKind.Triangle ? (obj.CenterX, obj.CenterY + obj.Size / 6.0) : (obj.CenterX, obj.CenterY);
    }

    /// <summary>The digit box's top-left pixel: (round(gx) − 4, round(gy) − 7), rounding half away from zero.</summary>
    public static (int X, int Y) DigitOrigin(SceneObject obj)
    {
        var (gx, gy) = Centroid(obj);
        return ((int)Math.Round(gx, MidpointRounding.AwayFromZero) - SevenSegment.Width / 2,
                (int)Math.Round(gy, MidpointRounding.AwayFromZero) - SevenSegment.Height / 2);
    }

    static void DrawShape(Span<Rgb24> pixels, SceneObject obj)
    {
        // Every covered pixel lies within half the size (rounded up) of the centre, plus one for the pixel centres.
        int reach = (obj.Size + 1) / 2 + 1;
        int x0 = Math.Max(0, obj.CenterX - reach), x1 = Math.Min(Size - 1, obj.CenterX + reach);
        int y0 = Math.Max(0, obj.CenterY - reach), y1 = Math.Min(Size - 1, obj.CenterY + reach);
        if (x0 > x1 || y0 > y1) return;
        var fill = obj.Color.Fill;
        long s = obj.Size;
        for (int y = y0; y <= y1; y++)
        {
            long dy = 2L * y + 1 - 2L * obj.CenterY;
            // The covered pixels of a row form one run |dx| ≤ half (in doubled units); find it, then fill it.
            long half = obj.Shape switch
            {
                ShapeKind.Circle => s * s - dy * dy >= 0 ? IntSqrt(s * s - dy * dy) : -1,
                ShapeKind.Square => Math.Abs(dy) <= s ? s : -1,
                ShapeKind.Diamond => s - Math.Abs(dy),
                ShapeKind.Triangle => dy >= -s && dy <= s ? (dy + s) / 2 : -1,
                _ => -1,
            };
            if (half < 0) continue;
            // |2x + 1 − 2cx| ≤ half  ⇔  (2cx − 1 − half) / 2 ≤ x ≤ (2cx − 1 + half) / 2.
            int first = (int)Math.Max(x0, CeilDiv2(2L * obj.CenterX - 1 - half));
            int last = (int)Math.Min(x1, FloorDiv2(2L * obj.CenterX - 1 + half));
            if (first <= last) pixels.Slice(y * Size + first, last - first + 1).Fill(fill);
        }
    }

    static void DrawDigit(Span<Rgb24> pixels, SceneObject obj)
    {
        var (left, top) = DigitOrigin(obj);
        var ink = obj.Color.Ink;
        for (int row = 0; row < SevenSegment.Height; row++)
        {
            int y = top + row;
            if (y < 0 || y >= Size) continue;
            int mask = SevenSegment.RowMask(obj.Digit, row);
            for (int column = 0; column < SevenSegment.Width; column++)
            {
                int x = left + column;
                if ((mask >> column & 1) != 0 && x >= 0 && x < Size) pixels[y * Size + x] = ink;
            }
        }
    }

    /// <summary>⌊√n⌋ for n ≥ 0, exactly.</summary>
    static long IntSqrt(long n)
    {
        long r = (long)Math.Sqrt(n);
        while (r * r > n) r--;
        while ((r + 1) * (r + 1) <= n) r++;
        return r;
    }

    static long FloorDiv2(long n) => n >> 1;

    static long CeilDiv2(long n) => -(-n >> 1);
}
