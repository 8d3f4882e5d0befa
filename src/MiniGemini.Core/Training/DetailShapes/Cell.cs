namespace MiniGemini.Training.DetailShapes;

/// <summary>One cell of the 2 × 2 grid: column <see cref="X"/> and row <see cref="Y"/>, each 0 or 1.</summary>
internal readonly record struct Cell
{
    /// <summary>A cell by column and row.</summary>
    /// <exception cref="ArgumentOutOfRangeException">A coordinate is not 0 or 1.</exception>
    public Cell(int x, int y)
    {
        if (x is not (0 or 1)) throw new ArgumentOutOfRangeException(nameof(x), x, "A cell column is 0 or 1.");
        if (y is not (0 or 1)) throw new ArgumentOutOfRangeException(nameof(y), y, "A cell row is 0 or 1.");
        X = x;
        Y = y;
    }

    /// <summary>Column: 0 left, 1 right.</summary>
    public int X { get; }

    /// <summary>Row: 0 top, 1 bottom.</summary>
    public int Y { get; }

    /// <summary>Place in reading order: 0 top left, 1 top right, 2 bottom left, 3 bottom right.</summary>
    public int Index => 2 * Y + X;

    /// <summary>The position name used in questions: <c>top left</c>, <c>top right</c>, <c>bottom left</c> or <c>bottom right</c>.</summary>
    public string Name => (X, Y) switch
    {
        (0, 0) => "top left",
        (1, 0) => "top right",
        (0, 1) => "bottom left",
        _ => "bottom right",
    };

    /// <summary>Column 0, row 0.</summary>
    public static Cell TopLeft => new(0, 0);

    /// <summary>Column 1, row 0.</summary>
    public static Cell TopRight => new(1, 0);

    /// <summary>Column 0, row 1.</summary>
    public static Cell BottomLeft => new(0, 1);

    /// <summary>Column 1, row 1.</summary>
    public static Cell BottomRight => new(1, 1);

    /// <summary>The four cells in reading order.</summary>
    public static IReadOnlyList<Cell> All { get; } = [TopLeft, TopRight, BottomLeft, BottomRight];

    /// <summary>The cell at a place in reading order (0–3).</summary>
    public static Cell FromIndex(int index) =>
        index is >= 0 and < 4 ? All[index] : throw new ArgumentOutOfRangeException(nameof(index), index, "A cell index is 0 to 3.");

    /// <summary>The cell of a position name (case-insensitive, surrounding whitespace ignored); false when there is none.</summary>
    public static bool TryParse(string? name, out Cell cell)
    {
        foreach (var candidate in All)
        {
            if (string.Equals(name?.Trim(), candidate.Name, StringComparison.OrdinalIgnoreCase))
            {
                cell = candidate;
                return true;
            }
        }
        cell = default;
        return false;
    }

    /// <inheritdoc/>
    public override string ToString() => Name;
}
