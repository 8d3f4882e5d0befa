using SixLabors.ImageSharp.PixelFormats;

namespace MiniGemini.Training.DetailShapes;

/// <summary>One colour of the task's table: its name, the fill of the shape and the ink of the digit drawn on it.</summary>
/// <param name="Name">Lower-case name used in questions and answers.</param>
/// <param name="Fill">The shape's colour.</param>
/// <param name="Ink">The digit's colour: white or black.</param>
internal sealed record ShapeColor(string Name, Rgb24 Fill, Rgb24 Ink)
{
    /// <summary>Digit ink on dark colours.</summary>
    public static readonly Rgb24 White = new(255, 255, 255);

    /// <summary>Digit ink on light colours.</summary>
    public static readonly Rgb24 Black = new(0, 0, 0);

    /// <summary>(220, 40, 40), white ink.</summary>
    public static ShapeColor Red { get; } = new("red", new Rgb24(220, 40, 40), White);

    /// <summary>(40, 170, 60), black ink.</summary>
    public static ShapeColor Green { get; } = new("green", new Rgb24(40, 170, 60), Black);

    /// <summary>(40, 80, 220), white ink.</summary>
    public static ShapeColor Blue { get; } = new("blue", new Rgb24(40, 80, 220), White);

    /// <summary>(235, 200, 40), black ink.</summary>
    public static ShapeColor Yellow { get; } = new("yellow", new Rgb24(235, 200, 40), Black);

    /// <summary>(150, 60, 190), white ink.</summary>
    public static ShapeColor Purple { get; } = new("purple", new Rgb24(150, 60, 190), White);

    /// <summary>(245, 130, 30), black ink.</summary>
    public static ShapeColor Orange { get; } = new("orange", new Rgb24(245, 130, 30), Black);

    /// <summary>The table in the spec's order (red, green, blue, yellow, purple, orange).</summary>
    public static IReadOnlyList<ShapeColor> All { get; } = [Red, Green, Blue, Yellow, Purple, Orange];

    /// <summary>The colour of a name (case-insensitive, surrounding whitespace ignored); false when there is none.</summary>
    public static bool TryParse(string? name, out ShapeColor color)
    {
        foreach (var candidate in All)
        {
            if (string.Equals(name?.Trim(), candidate.Name, StringComparison.OrdinalIgnoreCase))
            {
                color = candidate;
                return true;
            }
        }
        color = Red;
        return false;
    }

    /// <summary>The colour of a name.</summary>
    /// <exception cref="ArgumentException">No colour of the table has that name.</exception>
    public static ShapeColor FromName(string name) =>
        TryParse(name, out var color) ? color : throw new ArgumentException($"'{name}' is not a colour of the Detail Shapes task.", nameof(name));

    /// <inheritdoc/>
    public override string ToString() => Name;
}
