using System.Globalization;
using System.Text.RegularExpressions;

namespace MiniGemini.Training.DetailShapes;

/// <summary>An object as a describe answer names it: position, colour, shape and digit (names lower-case, as written).</summary>
/// <param name="Cell">The position.</param>
/// <param name="Color">The colour word.</param>
/// <param name="Shape">The shape word.</param>
/// <param name="Digit">The number after "with the digit".</param>
internal sealed record DescribedObject(Cell Cell, string Color, string Shape, int Digit);

/// <summary>How many of a describe answer's expected objects were described right (colour, shape and digit).</summary>
/// <param name="Correct">Expected objects whose colour, shape and digit the prediction all got right.</param>
/// <param name="Total">Expected objects.</param>
public readonly record struct DescribeScore(int Correct, int Total);

/// <summary>
/// Scores answers as the spec does: correct when equal to the expected answer after trimming whitespace, lower-casing
/// and removing one trailing period; describe answers also per object.
/// </summary>
internal static partial class AnswerScorer
{
    /// <summary>Trims whitespace, lower-cases (invariant culture) and removes one trailing period.</summary>
    public static string Normalize(string? text)
    {
        var normalized = (text ?? "").Trim().ToLowerInvariant();
        return normalized.EndsWith('.') ? normalized[..^1] : normalized;
    }

    /// <summary>Whether <paramref name="predicted"/> equals <paramref name="expected"/> after <see cref="Normalize"/>.</summary>
    public static bool IsCorrect(string expected, string? predicted) =>
        string.Equals(Normalize(expected), Normalize(predicted), StringComparison.Ordinal);

    /// <summary>
    /// The objects a describe text names in sentences <c>The {position} has a {color} {shape} with the digit {d}</c>
    /// (case-insensitive, "a" or "an", anywhere in the text; others are skipped), in the order written.
    /// </summary>
    public static IReadOnlyList<DescribedObject> ParseDescription(string? text)
    {
        var objects = new List<DescribedObject>();
        foreach (Match m in ObjectSentence().Matches(text ?? ""))
        {
            if (!Cell.TryParse(WhiteSpace().Replace(m.Groups["position"].Value, " "), out var cell)) continue;
            if (!int.TryParse(m.Groups["digit"].Value, NumberStyles.None, CultureInfo.InvariantCulture, out int digit)) continue;
            objects.Add(new DescribedObject(cell, m.Groups["color"].Value.ToLowerInvariant(), m.Groups["shape"].Value.ToLowerInvariant(), digit));
        }
        return objects;
    }

    /// <summary>
    /// For each object of the expected describe answer, whether the prediction describes the same position (its first
    /// sentence about it) with the same colour, shape and digit; missing sentences count as wrong.
    /// </summary>
    public static DescribeScore ScoreDescription(string expected, string? predicted)
    {
        var want = ParseDescription(expected);
        var got = ParseDescription(predicted);
        int correct = want.Count(w => got.FirstOrDefault(g => g.Cell == w.Cell) is { } g
            && g.Color == w.Color && g.Shape == w.Shape && g.Digit == w.Digit);
        return new DescribeScore(correct, want.Count);
    }

    [GeneratedRegex(@"\bthe\s+(?<position>(?:top|bottom)\s+(?:left|right))\s+has\s+an?\s+(?<color>[a-z]+)\s+(?<shape>[a-z]+)\s+with\s+the\s+digit\s+(?<digit>[0-9]+)",
        RegexOptions.IgnoreCase | RegexOptions.CultureInvariant)]
    private static partial Regex ObjectSentence();

    [GeneratedRegex(@"\s+")]
    private static partial Regex WhiteSpace();
}
