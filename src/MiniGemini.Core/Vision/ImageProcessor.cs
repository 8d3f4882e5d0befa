using SixLabors.ImageSharp;
using TorchSharp;
using static TorchSharp.torch;
using static TorchSharp.torch.nn.functional;

namespace MiniGemini.Vision;

/// <summary>
/// MGM's image preprocessing for <c>image_aspect_ratio: pad</c>, the setting of every released model.
/// <list type="number">
/// <item><b>Decode to RGB</b> as PIL's <c>Image.open(f).convert("RGB")</c> does. Alpha is dropped without compositing,
/// 16-bit colour keeps its high byte and 16-bit grey saturates at 255, as in PIL. Only the first frame of a GIF or
/// TIFF is used. EXIF orientation is ignored unless <see cref="ImagePreprocessOptions.ApplyExifOrientation"/> is set.
/// PNG, BMP, TIFF and GIF decode to exactly PIL's bytes, except that a GIF's transparent pixels come out black where PIL
/// gives their palette colour. JPEG and lossy WebP decoders may differ from libjpeg/libwebp by a level here and
/// there. Truncated PNG and JPEG data is refused, as PIL refuses it.</item>
/// <item><b>Pad</b> to a square of side max(w, h) filled with <see cref="ImagePreprocessOptions.PadColor"/>, the image
/// centred on the short axis (MGM's <c>expand2square</c>).</item>
/// <item><b>Resize</b> to <see cref="ImagePreprocessOptions.HrSize"/>² with Pillow's antialiased bicubic filter,
/// reproduced to the byte.</item>
/// <item><b>Normalize</b>: /255, then (x − mean)/std per channel, CHW float32 → <see cref="ImageTensors.Hr"/>.</item>
/// <item><b>LR views</b>: bilinear resize of the normalized HR tensor (align_corners = false, no antialias) to
/// (LrSize·Grid)². HD models cut it into Grid² crops and, when <see cref="ImagePreprocessOptions.Global"/> is set, add
/// a bilinear downsample to LrSize² as the global view → <see cref="ImageTensors.Lr"/>.</item>
/// </list>
/// Unlike MGM, any batch size works with HD models.
/// </summary>
/// <remarks>
/// Encoded inputs are checked before decoding: only the header is read, and an image over
/// <see cref="ImagePreprocessOptions.MaxImagePixels"/> is refused. Empty, truncated or corrupt data and non-image bytes
/// raise <see cref="InvalidImageException"/>, which names the input. An instance is immutable and may be shared
/// across threads.
/// </remarks>
internal sealed class ImageProcessor
{
    readonly float[][] _normalize; // per channel: uint8 value → normalized float

    /// <summary>Creates a processor.</summary>
    /// <param name="options">Sizes, normalization and limits; the defaults are MGM-7B's (768 HR, 336 LR, CLIP mean/std).</param>
    /// <exception cref="ArgumentException">An option is out of range (non-positive size, std ≤ 0, mean outside [0, 1]).</exception>
    public ImageProcessor(ImagePreprocessOptions? options = null)
    {
        options ??= new ImagePreprocessOptions();
        options.Validate();
        Options = options with { Mean = [.. options.Mean], Std = [.. options.Std] }; // a caller's array may change later
        _normalize = [.. Enumerable.Range(0, 3).Select(c => NormalizationTable(Options.Mean[c], Options.Std[c]))];
    }

    /// <summary>The options in force.</summary>
    public ImagePreprocessOptions Options { get; }

    /// <summary>Preprocesses one image file.</summary>
    /// <exception cref="InvalidImageException">The file is empty, truncated, corrupt or not an image; or it is too large (<see cref="InvalidImageReason.TooLarge"/>).</exception>
    /// <exception cref="IOException">The file cannot be opened (for example <see cref="FileNotFoundException"/>).</exception>
    public ImageTensors Process(string path) => Process([path]);

    /// <summary>Preprocesses a batch of image files (any sizes); image i is row i of both outputs.</summary>
    /// <exception cref="InvalidImageException">A file is empty, truncated, corrupt or not an image, or is too large; the message names it.</exception>
    /// <exception cref="IOException">A file cannot be opened.</exception>
    public ImageTensors Process(IEnumerable<string> paths)
    {
        ArgumentNullException.ThrowIfNull(paths);
        return ToTensors([.. paths.Select(path => ImageReader.Read(path, Options))]);
    }

    /// <summary>Preprocesses one encoded image read from <paramref name="stream"/> (from its current position to the end).</summary>
    /// <param name="stream">The encoded image; a forward-only stream is buffered in memory first.</param>
    /// <param name="name">Names the input in error messages.</param>
    /// <exception cref="InvalidImageException">The data is empty, truncated, corrupt or not an image, or is too large.</exception>
    public ImageTensors Process(Stream stream, string name = "<stream>")
    {
        ArgumentNullException.ThrowIfNull(stream);
        return ToTensors([ImageReader.Read(stream, name, Options)]);
    }

    /// <summary>Preprocesses one encoded image held in memory (a <c>byte[]</c> converts implicitly).</summary>
    /// <param name="data">The encoded image (PNG, JPEG, GIF, BMP, TIFF, WebP, TGA or PBM).</param>
    /// <param name="name">Names the input in error messages.</param>
    /// <exception cref="InvalidImageException">The data is empty, truncated, corrupt or not an image, or is too large.</exception>
    public ImageTensors Process(ReadOnlyMemory<byte> data, string name = "<bytes>") => ToTensors([ImageReader.Read(data, name, Options)]);

    /// <summary>
    /// Preprocesses an image that is already decoded, in any pixel format. The image is not modified. The pixel budget
    /// applies only to encoded inputs, so it is not checked here.
    /// </summary>
    public ImageTensors Process(Image image) => Process([image]);

    /// <summary>Preprocesses a batch of decoded images (any sizes and pixel formats); image i is row i of both outputs.</summary>
    public ImageTensors Process(IEnumerable<Image> images)
    {
        ArgumentNullException.ThrowIfNull(images);
        return ToTensors([.. images.Select(image => ImageReader.FromImage(image ?? throw new ArgumentNullException(nameof(images), "The batch contains a null image."), Options))]);
    }

    /// <summary>
    /// MGM's LR views from a normalized HR tensor <c>[B, 3, H, W]</c>: bilinear resize (align_corners = false, no
    /// antialias) to <c>[B, 3, s·g, s·g]</c>. For g = 1 that is the result. For g &gt; 1 it is cut into g² crops per
    /// image, row-major, giving <c>[B·g², 3, s, s]</c>, followed by the B global views (the resized tensor downsampled to s×s)
    /// when <paramref name="global"/> is set. The layout is that of <see cref="ImageTensors.Lr"/>.
    /// </summary>
    /// <param name="hr">Normalized HR images <c>[B, 3, H, W]</c>, floating point.</param>
    /// <param name="lrSize">Side s of one view (the CLIP input size).</param>
    /// <param name="grid">Crops per side g.</param>
    /// <param name="global">Whether to append a global view per image (only when g &gt; 1, as in MGM).</param>
    /// <returns>A new tensor; <paramref name="hr"/> is not disposed.</returns>
    /// <exception cref="ArgumentException">The tensor is not <c>[B, 3, H, W]</c> floating point, or a size is not positive.</exception>
    public static Tensor LowResolutionViews(Tensor hr, int lrSize, int grid, bool global)
    {
        ArgumentNullException.ThrowIfNull(hr);
        if (hr.dim() != 4 || hr.shape[1] != 3 || !hr.is_floating_point())
            throw new ArgumentException($"Expected normalized HR images [B, 3, H, W] of a floating type; got {TensorHelpers.Shape(hr.shape)} {hr.dtype}.", nameof(hr));
        if (lrSize <= 0) throw new ArgumentOutOfRangeException(nameof(lrSize), lrSize, "The LR view side must be positive.");
        if (grid <= 0) throw new ArgumentOutOfRangeException(nameof(grid), grid, "The grid must be positive.");

        using var scope = NewDisposeScope();
        long batch = hr.shape[0], side = (long)lrSize * grid;
        var full = interpolate(hr, [side, side], mode: InterpolationMode.Bilinear, align_corners: false); // [B, 3, s·g, s·g]
        if (grid == 1) return full.MoveToOuterDisposeScope();

        var crops = full.view(batch, 3, grid, lrSize, grid, lrSize) // [B, 3, g, s, g, s]
            .permute(0, 2, 4, 1, 3, 5)                              // [B, g(row), g(col), 3, s, s]
            .reshape(batch * grid * grid, 3, lrSize, lrSize);       // [B·g², 3, s, s]
        if (!global) return crops.MoveToOuterDisposeScope();

        var globals = interpolate(full, [lrSize, lrSize], mode: InterpolationMode.Bilinear, align_corners: false); // [B, 3, s, s]
        return cat([crops, globals], dim: 0).MoveToOuterDisposeScope(); // [B·g² + B, 3, s, s]
    }

    /// <summary>Pads and resizes each image to the HR side, normalizes, and derives the LR views.</summary>
    internal ImageTensors ToTensors(IReadOnlyList<ImageRgb8> images)
    {
        using var scope = NewDisposeScope();
        var hr = HighResolution(images);                                                     // [B, 3, S, S]
        var lr = LowResolutionViews(hr, Options.LrSize, Options.Grid, Options.Global);
        return new ImageTensors(hr.MoveToOuterDisposeScope(), lr.MoveToOuterDisposeScope(), Options.ViewsPerImage);
    }

    /// <summary>
    /// Pads and resizes each image to the HR side and normalizes → HR pixels <c>[B, 3, S, S]</c>; the model derives the
    /// LR views from them itself, as MGM does.
    /// </summary>
    internal Tensor HighResolution(IReadOnlyList<ImageRgb8> images)
    {
        if (images.Count == 0) throw new ArgumentException("The batch is empty.", nameof(images));
        int size = Options.HrSize;
        int plane = size * size;
        var pixels = new float[checked(images.Count * 3 * plane)];
        Parallel.For(0, images.Count, b =>
        {
            var square = PillowResample.Bicubic(images[b].ExpandToSquare(Options.PadColor), size, size).Pixels; // HWC uint8
            NormalizeInto(square, pixels, b, plane);
        });

        return torch.tensor(pixels, [images.Count, 3, size, size]); // [B, 3, S, S]
    }

    /// <summary>Normalizes images of one size as they are, without padding or resizing → <c>[B, 3, h, w]</c> (e.g. crops of an HR image).</summary>
    /// <exception cref="ArgumentException">The batch is empty or the images differ in size.</exception>
    internal Tensor NormalizeAsIs(IReadOnlyList<ImageRgb8> images)
    {
        if (images.Count == 0) throw new ArgumentException("The batch is empty.", nameof(images));
        int width = images[0].Width, height = images[0].Height, plane = width * height;
        if (images.FirstOrDefault(i => i.Width != width || i.Height != height) is { } other)
            throw new ArgumentException($"Images of one batch must have one size: {width}×{height} and {other.Width}×{other.Height}.", nameof(images));
        var pixels = new float[checked(images.Count * 3 * plane)];
        for (int b = 0; b < images.Count; b++) NormalizeInto(images[b].Pixels, pixels, b, plane);
        return torch.tensor(pixels, [images.Count, 3, height, width]); // [B, 3, h, w]
    }

    /// <summary>HWC uint8 pixels of image <paramref name="b"/> → its normalized CHW planes in <paramref name="pixels"/>.</summary>
    void NormalizeInto(byte[] hwc, float[] pixels, int b, int plane)
    {
        for (int c = 0; c < 3; c++)
        {
            var table = _normalize[c];
            int offset = (b * 3 + c) * plane;
            for (int i = 0; i < plane; i++) pixels[offset + i] = table[hwc[3 * i + c]];
        }
    }

    // CLIPImageProcessor's arithmetic: rescale in float64 then cast to float32, normalize in float32.
    static float[] NormalizationTable(double mean, double std)
    {
        var table = new float[256];
        for (int v = 0; v < 256; v++) table[v] = ((float)(v * (1.0 / 255.0)) - (float)mean) / (float)std;
        return table;
    }
}
