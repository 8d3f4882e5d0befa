using System.Text;

namespace MiniGemini.Training.DetailShapes;

/// <summary>
/// Writes the task's questions and answers: every question the spec allows for a scene, and image-generation requests.
/// </summary>
internal static class QuestionWriter
{
    /// <summary>The count question.</summary>
    public const string CountQuestion = "How many shapes are there?";

    /// <summary>The describe question.</summary>
    public const string DescribeQuestion = "Describe the picture.";

    /// <summary>
    /// Every question the spec asks about <paramref name="scene"/>, grouped by type in <see cref="QuestionType.All"/>
    /// order and within a type in reading order: count; shape per occupied cell; color per shape only one object has;
    /// digit per colour and shape only one object has; digit_at per occupied cell; describe.
    /// </summary>
    public static IReadOnlyList<TaskQuestion> Questions(Scene scene)
    {
        ArgumentNullException.ThrowIfNull(scene);
        var objects = scene.Objects;
        var questions = new List<TaskQuestion>
        {
            new(QuestionType.Count, CountQuestion, objects.Count.ToString(System.Globalization.CultureInfo.InvariantCulture)),
        };
        foreach (var o in objects)
            questions.Add(new(QuestionType.Shape, $"What shape is at the {o.Cell.Name}?", o.Shape.Name(), o.Cell));
        foreach (var o in objects)
            if (objects.Count(p => p.Shape == o.Shape) == 1)
                questions.Add(new(QuestionType.Color, $"What color is the {o.Shape.Name()}?", o.Color.Name, o.Cell));
        foreach (var o in objects)
            if (objects.Count(p => p.Shape == o.Shape && p.Color == o.Color) == 1)
                questions.Add(new(QuestionType.Digit, $"What digit is on the {o.Color.Name} {o.Shape.Name()}?", Digit(o.Digit), o.Cell));
        foreach (var o in objects)
            questions.Add(new(QuestionType.DigitAt, $"What digit is at the {o.Cell.Name}?", Digit(o.Digit), o.Cell));
        questions.Add(new(QuestionType.Describe, DescribeQuestion, Describe(scene)));
        return questions;
    }

    /// <summary>
    /// The describe answer: <c>There is 1 shape.</c> or <c>There are {n} shapes.</c>, then for each object in reading
    /// order <c> The {position} has a {color} {shape} with the digit {d}.</c>
    /// </summary>
    public static string Describe(Scene scene)
    {
        ArgumentNullException.ThrowIfNull(scene);
        int n = scene.Objects.Count;
        var text = new StringBuilder(n == 1 ? "There is 1 shape." : $"There are {n} shapes.");
        foreach (var o in scene.Objects) text.Append(" The ").Append(o.Cell.Name).Append(" has ").Append(o.Description).Append('.');
        return text.ToString();
    }

    /// <summary>
    /// A random image-generation request: colour, shape, digit and cell drawn uniformly, in that order, from
    /// <paramref name="random"/>.
    /// </summary>
    public static TaskQuestion Draw(Random random)
    {
        ArgumentNullException.ThrowIfNull(random);
        var color = ShapeColor.All[random.Next(ShapeColor.All.Count)];
        var shape = ShapeKinds.All[random.Next(ShapeKinds.All.Count)];
        int digit = random.Next(10);
        var cell = Cell.All[random.Next(Cell.All.Count)];
        return Draw(color, shape, digit, cell);
    }

    /// <summary>
    /// <c>Draw a {color} {shape} with the digit {d} at the {position}.</c>, answered by
    /// <c>&lt;h&gt;a {color} {shape} with the digit {d} at the {position}&lt;/h&gt;</c>.
    /// </summary>
    public static TaskQuestion Draw(ShapeColor color, ShapeKind shape, int digit, Cell cell)
    {
        ArgumentNullException.ThrowIfNull(color);
        if (digit is < 0 or > 9) throw new ArgumentOutOfRangeException(nameof(digit), digit, "A digit is 0 to 9.");
        var what = $"a {color.Name} {shape.Name()} with the digit {digit} at the {cell.Name}";
        return new TaskQuestion(QuestionType.Draw, $"Draw {what}.", $"<h>{what}</h>");
    }

    static string Digit(int digit) => ((char)('0' + digit)).ToString();
}
