namespace MiniGemini.Training.DetailShapes;

/// <summary>The four shapes of the Detail Shapes task.</summary>
internal enum ShapeKind
{
    /// <summary><c>(px − cx)² + (py − cy)² ≤ r²</c>.</summary>
    Circle,
    /// <summary><c>|px − cx| ≤ r</c> and <c>|py − cy| ≤ r</c>.</summary>
    Square,
    /// <summary>Apex up: <c>cy − r ≤ py ≤ cy + r</c> and <c>|px − cx| ≤ (py − (cy − r)) / 2</c>.</summary>
    Triangle,
    /// <summary><c>|px − cx| + |py − cy| ≤ r</c>.</summary>
    Diamond,
}

/// <summary>The names the questions and answers use for <see cref="ShapeKind"/>.</summary>
internal static class ShapeKinds
{
    /// <summary>All shapes, in the spec's order (circle, square, triangle, diamond).</summary>
    public static IReadOnlyList<ShapeKind> All { get; } = [ShapeKind.Circle, ShapeKind.Square, ShapeKind.Triangle, ShapeKind.Diamond];

    /// <summary>The lower-case name: <c>circle</c>, <c>square</c>, <c>triangle</c> or <c>diamond</c>.</summary>
    public static string Name(this ShapeKind shape) => shape switch
    {
        ShapeKind.Circle => "circle",
        ShapeKind.Square => "square",
        ShapeKind.Triangle => "triangle",
        ShapeKind.Diamond => "diamond",
        _ => throw new ArgumentOutOfRangeException(nameof(shape), shape, "Not a shape of the Detail Shapes task."),
    };

    /// <summary>The shape of a name (case-insensitive, surrounding whitespace ignored); false when there is none.</summary>
    public static bool TryParse(string? name, out ShapeKind shape)
    {
        foreach (var candidate in All)
        {
            if (string.Equals(name?.Trim(), candidate.Name(), StringComparison.OrdinalIgnoreCase))
            {
                shape = candidate;
                return true;
            }
        }
        shape = default;
        return false;
    }
}
