namespace MiniGemini.Vision;

/// <summary>An 8-bit RGB image as packed bytes (row-major, R G B per pixel): PIL's "RGB" mode.</summary>
internal sealed class ImageRgb8
{
    public ImageRgb8(int width, int height, byte[]? pixels = null)
    {
        if (width <= 0 || height <= 0) throw new ArgumentOutOfRangeException(nameof(width), $"Image size {width}×{height} must be positive.");
        Width = width;
        Height = height;
        Pixels = pixels ?? new byte[checked(width * height * 3)];
        if (Pixels.Length != (long)width * height * 3)
            throw new ArgumentException($"{Pixels.Length} bytes do not hold a {width}×{height} RGB image.", nameof(pixels));
    }

    public int Width { get; }
    public int Height { get; }
    public byte[] Pixels { get; }

    /// <summary>
    /// MGM's <c>expand2square</c>: a max(w,h)² canvas of <paramref name="fill"/> with the image pasted centred on the
    /// short axis at offset floor((max − min)/2). A square image is returned as is.
    /// </summary>
    public ImageRgb8 ExpandToSquare((byte R, byte G, byte B) fill)
    {
        if (Width == Height) return this;
        int side = Math.Max(Width, Height);
        var square = new ImageRgb8(side, side);
        var canvas = square.Pixels;
        int sideBytes = side * 3;
        for (int i = 0; i < sideBytes; i += 3)
        {
            canvas[i] = fill.R;
            canvas[i + 1] = fill.G;
            canvas[i + 2] = fill.B;
        }
        for (int y = 1; y < side; y++) Buffer.BlockCopy(canvas, 0, canvas, y * sideBytes, sideBytes);
        int left = Width < side ? (side - Width) / 2 : 0;
        int top = Height < side ? (side - Height) / 2 : 0;
        int rowBytes = Width * 3;
        for (int y = 0; y < Height; y++)
            Buffer.BlockCopy(Pixels, y * rowBytes, canvas, ((top + y) * side + left) * 3, rowBytes);
        return square;
    }
}
