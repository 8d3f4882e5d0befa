namespace MiniGemini.Training.DetailShapes;

/// <summary>One object of a scene: a shape of a colour with a digit on it, centred at (<see cref="CenterX"/>, <see cref="CenterY"/>).</summary>
/// <param name="Cell">The grid cell it belongs to.</param>
/// <param name="Shape">Its shape.</param>
/// <param name="Color">Its colour (fill and digit ink).</param>
/// <param name="Digit">The digit drawn on it, 0–9.</param>
/// <param name="Size">Side of its bounding box, <c>s</c> (the spec samples 110–160).</param>
/// <param name="CenterX">Centre column <c>cx</c> in pixels (<c>224·i + 112 + jx</c>).</param>
/// <param name="CenterY">Centre row <c>cy</c> in pixels (<c>224·j + 112 + jy</c>).</param>
internal sealed record SceneObject(Cell Cell, ShapeKind Shape, ShapeColor Color, int Digit, int Size, int CenterX, int CenterY)
{
    readonly ShapeKind _shape = CheckShape(Shape);
    readonly ShapeColor _color = CheckColor(Color);
    readonly int _digit = CheckDigit(Digit);
    readonly int _size = CheckSize(Size);

    /// <summary>The shape.</summary>
    public ShapeKind Shape { get => _shape; init => _shape = CheckShape(value); }

    /// <summary>The colour.</summary>
    public ShapeColor Color { get => _color; init => _color = CheckColor(value); }

    /// <summary>The digit, 0–9.</summary>
    public int Digit { get => _digit; init => _digit = CheckDigit(value); }

    /// <summary>The bounding-box side, at least 1.</summary>
    public int Size { get => _size; init => _size = CheckSize(value); }

    /// <summary>An object in a cell, centred at the cell's centre moved by the jitter.</summary>
    public static SceneObject InCell(Cell cell, ShapeKind shape, ShapeColor color, int digit, int size, int jitterX = 0, int jitterY = 0) =>
        new(cell, shape, color, digit, size,
            DetailShapesSpec.CellSize * cell.X + DetailShapesSpec.CellSize / 2 + jitterX,
            DetailShapesSpec.CellSize * cell.Y + DetailShapesSpec.CellSize / 2 + jitterY);

    /// <summary>How answers name it: <c>a {color} {shape} with the digit {d}</c>.</summary>
    public string Description => $"a {Color.Name} {Shape.Name()} with the digit {Digit}";

    static ShapeKind CheckShape(ShapeKind shape) =>
        Enum.IsDefined(shape) ? shape : throw new ArgumentOutOfRangeException(nameof(Shape), shape, "Not a shape of the task.");

    static ShapeColor CheckColor(ShapeColor color) => color ?? throw new ArgumentNullException(nameof(Color));

    static int CheckDigit(int digit) =>
        digit is >= 0 and <= 9 ? digit : throw new ArgumentOutOfRangeException(nameof(Digit), digit, "A digit is 0 to 9.");

    static int CheckSize(int size) =>
        size >= 1 ? size : throw new ArgumentOutOfRangeException(nameof(Size), size, "A size is at least 1.");
}
