namespace MiniGemini.Training.DetailShapes;

/// <summary>One question of the task and its exact expected answer.</summary>
/// <param name="Type">One of <see cref="QuestionType.All"/>: count, shape, color, digit, digit_at, describe or draw.</param>
/// <param name="Question">The question text (asked after the image as <c>&lt;image&gt;\n{question}</c>).</param>
/// <param name="Answer">The expected answer.</param>
/// <param name="About">The cell of the one object the question is about (shape, color, digit, digit_at), else null.</param>
internal sealed record TaskQuestion(string Type, string Question, string Answer, Cell? About = null);

/// <summary>The question types and how the report groups them.</summary>
internal static class QuestionType
{
    /// <summary><c>How many shapes are there?</c> (coarse).</summary>
    public const string Count = "count";

    /// <summary><c>What shape is at the {position}?</c> (coarse).</summary>
    public const string Shape = "shape";

    /// <summary><c>What color is the {shape}?</c> (coarse).</summary>
    public const string Color = "color";

    /// <summary><c>What digit is on the {color} {shape}?</c> (fine).</summary>
    public const string Digit = "digit";

    /// <summary><c>What digit is at the {position}?</c> (fine).</summary>
    public const string DigitAt = "digit_at";

    /// <summary><c>Describe the picture.</c>, scored whole and per object.</summary>
    public const string Describe = "describe";

    /// <summary>An image-generation request, asked without an image.</summary>
    public const string Draw = "draw";

    /// <summary>All types, in report order.</summary>
    public static IReadOnlyList<string> All { get; } = [Count, Shape, Color, Digit, DigitAt, Describe, Draw];

    /// <summary>The types answerable from the low-resolution view.</summary>
    public static IReadOnlyList<string> Coarse { get; } = [Count, Shape, Color];

    /// <summary>The types that need the high-resolution detail.</summary>
    public static IReadOnlyList<string> Fine { get; } = [Digit, DigitAt];

    /// <summary>Whether <paramref name="type"/> is one of <see cref="All"/> (exact, lower-case).</summary>
    public static bool IsKnown(string? type) => type is not null && All.Contains(type, StringComparer.Ordinal);
}
