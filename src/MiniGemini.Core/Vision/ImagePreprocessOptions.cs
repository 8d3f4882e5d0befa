using MiniGemini.Checkpoints;
using MiniGemini.Modeling;
using MiniGemini.Vision;

namespace MiniGemini;

/// <summary>
/// How <see cref="ImageProcessor"/> turns an image into MGM's two inputs (the <c>pad</c> aspect-ratio path of every
/// released model): the HR tensor for the ConvNeXt tower and the LR views for the CLIP tower.
/// </summary>
public sealed record ImagePreprocessOptions
{
    /// <summary>Default pixel budget: 64 million pixels (an 8000×8000 image).</summary>
    public const long DefaultMaxImagePixels = 64_000_000;

    /// <summary>HR side S: the padded square is resized to S×S (MGM's <c>image_size_aux</c>: 768, or 1536 for HD).</summary>
    public int HrSize { get; init; } = 768;

    /// <summary>
    /// Side s of one LR view, the CLIP tower's input size (336 for the released towers). The normalized HR tensor is
    /// resized to (s·<see cref="Grid"/>)² and, for <see cref="Grid"/> &gt; 1, cut into views of s×s.
    /// </summary>
    public int LrSize { get; init; } = 336;

    /// <summary>LR crops per side (MGM's <c>image_grid</c>: 1 normal, 2 HD).</summary>
    public int Grid { get; init; } = 1;

    /// <summary>
    /// Whether HD models add a global view (MGM's <c>image_global</c>): the LR tensor downsampled to s×s. As in MGM it
    /// only takes effect when <see cref="Grid"/> &gt; 1.
    /// </summary>
    public bool Global { get; init; }

    /// <summary>Normalization mean per RGB channel; also gives the pad colour. Defaults to OpenAI CLIP's.</summary>
    public IReadOnlyList<double> Mean { get; init; } = PreprocessorConfig.ClipMean;

    /// <summary>Normalization std per RGB channel. Defaults to OpenAI CLIP's.</summary>
    public IReadOnlyList<double> Std { get; init; } = PreprocessorConfig.ClipStd;

    /// <summary>
    /// Largest image, in pixels (width·height as declared by the header), that is decoded. Larger encoded inputs are
    /// refused with <see cref="InvalidImageException"/> (<see cref="InvalidImageReason.TooLarge"/>) after reading only their
    /// header, so a small file that claims a huge size cannot exhaust memory. Images passed already decoded are not checked.
    /// </summary>
    public long MaxImagePixels { get; init; } = DefaultMaxImagePixels;

    /// <summary>
    /// Whether to rotate/flip the image as its EXIF orientation tag says before padding. Default <c>false</c>, the
    /// same as MGM: <c>PIL.Image.open(...).convert('RGB')</c> ignores EXIF orientation, so a phone photo stored
    /// sideways reaches the model sideways. Set it to <c>true</c> to see photos upright (results then differ from
    /// MGM's for such images).
    /// </summary>
    public bool ApplyExifOrientation { get; init; }

    /// <summary>
    /// The pad colour of MGM's <c>expand2square</c>: <c>int(mean·255)</c> per channel, (122, 116, 104) for the CLIP
    /// mean.
    /// </summary>
    public (byte R, byte G, byte B) PadColor => (ToByte(Mean[0]), ToByte(Mean[1]), ToByte(Mean[2]));

    /// <summary>LR views per image: 1, or Grid² crops plus the global view when <see cref="Global"/> applies.</summary>
    public int ViewsPerImage => Grid * Grid + (HasGlobalView ? 1 : 0);

    internal bool HasGlobalView => Global && Grid > 1;

    /// <summary>
    /// Options for an MGM model: HR side from <c>image_size_aux</c>, grid and global view from the MGM config, LR side
    /// from the CLIP processor's crop size (MGM's <c>image_size_raw</c>) or else the CLIP tower's image size, mean and
    /// std from the processor (CLIP's when there is none).
    /// </summary>
    /// <param name="model">The MGM config.json.</param>
    /// <param name="clip">The CLIP tower's vision config.</param>
    /// <param name="processor">The CLIP tower's preprocessor_config.json, if it has one.</param>
    /// <exception cref="ModelLoadException">The MGM config has no <c>image_size_aux</c>.</exception>
    internal static ImagePreprocessOptions ForModel(MgmConfig model, ClipVisionConfig clip, PreprocessorConfig? processor = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(clip);
        if (model.ImageSizeAux is not { } hrSize)
            throw ModelLoadException.Config("The MGM config has no image_size_aux (the HR input side); it is needed to preprocess images.",
                key: "image_size_aux");
        return new ImagePreprocessOptions
        {
            HrSize = hrSize,
            LrSize = processor?.CropSize ?? clip.ImageSize,
            Grid = model.ImageGrid,
            Global = model.ImageGlobal,
            Mean = processor?.ImageMean ?? PreprocessorConfig.ClipMean,
            Std = processor?.ImageStd ?? PreprocessorConfig.ClipStd,
        };
    }

    internal void Validate()
    {
        static void Positive(long value, string name)
        {
            if (value <= 0) throw new ArgumentOutOfRangeException(name, value, $"ImagePreprocessOptions.{name} must be positive.");
        }
        Positive(HrSize, nameof(HrSize));
        Positive(LrSize, nameof(LrSize));
        Positive(Grid, nameof(Grid));
        Positive(MaxImagePixels, nameof(MaxImagePixels));
        if (Mean is not { Count: 3 } || Mean.Any(m => !(m >= 0 && m <= 1)))
            throw new ArgumentException($"ImagePreprocessOptions.Mean must have 3 entries in [0, 1]; got [{string.Join(", ", Mean ?? [])}].", nameof(Mean));
        if (Std is not { Count: 3 } || Std.Any(s => !(s > 0) || double.IsInfinity(s)))
            throw new ArgumentException($"ImagePreprocessOptions.Std must have 3 positive finite entries; got [{string.Join(", ", Std ?? [])}].", nameof(Std));
    }

    // Python's int() truncates; the mean is in [0, 1] so this is floor(mean·255).
    static byte ToByte(double mean) => (byte)(int)(mean * 255);
}
