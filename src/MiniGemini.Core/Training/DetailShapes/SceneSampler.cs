namespace MiniGemini.Training.DetailShapes;

/// <summary>
/// Draws scenes as the spec does: a uniform background; each cell, in reading order, holds an object with probability
/// 0.6, whose shape, colour, digit, size (110–160) and jitters (−20…20) are uniform and independent; a scene with no
/// object is drawn again. Deterministic for a seed.
/// </summary>
internal sealed class SceneSampler
{
    readonly Random _random;

    /// <summary>A sampler on <c>new Random(seed)</c>.</summary>
    public SceneSampler(int seed) : this(new Random(seed)) { }

    /// <summary>A sampler drawing from <paramref name="random"/> (which others may share).</summary>
    public SceneSampler(Random random) => _random = random ?? throw new ArgumentNullException(nameof(random));

    /// <summary>The next scene.</summary>
    public Scene Next()
    {
        var objects = new List<SceneObject>(4);
        while (true)
        {
            var background = DetailShapesSpec.Backgrounds[_random.Next(DetailShapesSpec.Backgrounds.Count)];
            objects.Clear();
            foreach (var cell in Cell.All)
            {
                if (_random.NextDouble() >= DetailShapesSpec.OccupancyProbability) continue;
                var shape = ShapeKinds.All[_random.Next(ShapeKinds.All.Count)];
                var color = ShapeColor.All[_random.Next(ShapeColor.All.Count)];
                int digit = _random.Next(10);
                int size = _random.Next(DetailShapesSpec.MinSize, DetailShapesSpec.MaxSize + 1);
                int jitterX = _random.Next(-DetailShapesSpec.MaxJitter, DetailShapesSpec.MaxJitter + 1);
                int jitterY = _random.Next(-DetailShapesSpec.MaxJitter, DetailShapesSpec.MaxJitter + 1);
                objects.Add(SceneObject.InCell(cell, shape, color, digit, size, jitterX, jitterY));
            }
            if (objects.Count > 0) return new Scene(background, objects);
        }
    }
}
