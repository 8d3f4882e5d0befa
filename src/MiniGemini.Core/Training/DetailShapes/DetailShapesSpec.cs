using SixLabors.ImageSharp.PixelFormats;

namespace MiniGemini.Training.DetailShapes;

/// <summary>
/// The fixed numbers of the Detail Shapes task (docs: detail-shapes-task.md): a 448 × 448 picture, a 2 × 2 grid of
/// 224 px cells, one object per occupied cell with a 7-segment digit on it.
/// </summary>
internal static class DetailShapesSpec
{
    /// <summary>Side of the (square) picture in pixels.</summary>
    public const int ImageSize = 448;

    /// <summary>Side of one grid cell in pixels.</summary>
    public const int CellSize = 224;

    /// <summary>Smallest object size (bounding-box side), inclusive.</summary>
    public const int MinSize = 110;

    /// <summary>Largest object size (bounding-box side), inclusive.</summary>
    public const int MaxSize = 160;

    /// <summary>Largest jitter of an object's centre from its cell's centre, in pixels, either way.</summary>
    public const int MaxJitter = 20;

    /// <summary>Chance that a cell holds an object.</summary>
    public const double OccupancyProbability = 0.6;

    /// <summary>The three possible background colours, in the spec's order.</summary>
    public static IReadOnlyList<Rgb24> Backgrounds { get; } =
    [
        new Rgb24(240, 240, 240),
        new Rgb24(225, 225, 215),
        new Rgb24(210, 220, 230),
    ];
}
