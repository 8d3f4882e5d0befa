using SixLabors.ImageSharp.PixelFormats;

namespace MiniGemini.Training.DetailShapes;

/// <summary>A picture of the task: a background colour and at most one object per cell, kept in reading order.</summary>
internal sealed record Scene
{
    /// <summary>A scene; the objects are put in reading order (top left, top right, bottom left, bottom right).</summary>
    /// <exception cref="ArgumentException">Two objects are in the same cell.</exception>
    public Scene(Rgb24 background, IEnumerable<SceneObject> objects)
    {
        ArgumentNullException.ThrowIfNull(objects);
        var sorted = objects.Select(o => o ?? throw new ArgumentException("An object is null.", nameof(objects)))
            .OrderBy(o => o.Cell.Index).ToArray();
        for (int i = 1; i < sorted.Length; i++)
            if (sorted[i].Cell == sorted[i - 1].Cell)
                throw new ArgumentException($"Two objects are in the {sorted[i].Cell.Name} cell; a cell holds at most one.", nameof(objects));
        Background = background;
        Objects = sorted;
    }

    /// <summary>The background colour (one of <see cref="DetailShapesSpec.Backgrounds"/> for sampled scenes).</summary>
    public Rgb24 Background { get; }

    /// <summary>The objects in reading order.</summary>
    public IReadOnlyList<SceneObject> Objects { get; }

    /// <summary>The object in a cell, or null when the cell is empty.</summary>
    public SceneObject? At(Cell cell) => Objects.FirstOrDefault(o => o.Cell == cell);

    /// <summary>Same background and the same objects.</summary>
    public bool Equals(Scene? other) =>
        other is not null && Background.Equals(other.Background) && Objects.SequenceEqual(other.Objects);

    /// <inheritdoc/>
    public override int GetHashCode()
    {
        var hash = new HashCode();
        hash.Add(Background);
        foreach (var o in Objects) hash.Add(o);
        return hash.ToHashCode();
    }
}
