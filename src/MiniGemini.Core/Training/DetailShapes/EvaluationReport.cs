using System.Globalization;
using System.Text;
using System.Text.Json;

namespace MiniGemini.Training.DetailShapes;

/// <summary>Right answers out of a number asked.</summary>
/// <param name="Correct">Right answers.</param>
/// <param name="Total">Questions (or, for describe per object, objects).</param>
public readonly record struct Accuracy(int Correct, int Total)
{
    /// <summary><see cref="Correct"/> / <see cref="Total"/>; null when nothing was asked.</summary>
    public double? Value => Total == 0 ? null : (double)Correct / Total;

    /// <summary>Both counts added.</summary>
    public static Accuracy operator +(Accuracy a, Accuracy b) => new(a.Correct + b.Correct, a.Total + b.Total);
}

/// <summary>
/// Accumulates scored answers and reports accuracy per type; coarse (count, shape, color); fine (digit, digit_at);
/// describe as whole strings and per object (colour, shape and digit all right); draw; and overall (every question,
/// describe counted as a whole string).
/// </summary>
public sealed class EvaluationReport
{
    readonly Dictionary<string, Accuracy> _types = QuestionType.All.ToDictionary(t => t, _ => default(Accuracy), StringComparer.Ordinal);
    Accuracy _describeObjects;

    /// <summary>Scores <paramref name="predicted"/> against the item's answer, records it, and says whether it was right.</summary>
    public bool Score(EvaluationItem item, string? predicted)
    {
        ArgumentNullException.ThrowIfNull(item);
        bool correct = AnswerScorer.IsCorrect(item.Answer, predicted);
        Add(item.Type, correct, item.Type == QuestionType.Describe ? AnswerScorer.ScoreDescription(item.Answer, predicted) : null);
        return correct;
    }

    /// <summary>Records one answer (and, for describe, its per-object score).</summary>
    /// <exception cref="ArgumentException"><paramref name="type"/> is not one of <see cref="QuestionType.All"/>.</exception>
    public void Add(string type, bool correct, DescribeScore? describeObjects = null)
    {
        if (!QuestionType.IsKnown(type)) throw new ArgumentException($"Unknown question type '{type}'.", nameof(type));
        _types[type] += new Accuracy(correct ? 1 : 0, 1);
        if (describeObjects is { } objects) _describeObjects += new Accuracy(objects.Correct, objects.Total);
    }

    /// <summary>Accuracy on one type.</summary>
    public Accuracy ForType(string type) =>
        _types.TryGetValue(type, out var accuracy) ? accuracy : throw new ArgumentException($"Unknown question type '{type}'.", nameof(type));

    /// <summary>count, shape and color together.</summary>
    public Accuracy Coarse => Sum(QuestionType.Coarse);

    /// <summary>digit and digit_at together.</summary>
    public Accuracy Fine => Sum(QuestionType.Fine);

    /// <summary>describe answers equal to the expected string.</summary>
    public Accuracy Describe => _types[QuestionType.Describe];

    /// <summary>Objects of describe answers with colour, shape and digit all right.</summary>
    public Accuracy DescribeObjects => _describeObjects;

    /// <summary>draw requests answered with the expected caption.</summary>
    public Accuracy Draw => _types[QuestionType.Draw];

    /// <summary>Every question.</summary>
    public Accuracy Overall => Sum(QuestionType.All);

    Accuracy Sum(IEnumerable<string> types) => types.Aggregate(default(Accuracy), (sum, t) => sum + _types[t]);

    /// <summary>The rows of the report: each type, then the groups.</summary>
    public IReadOnlyList<(string Name, Accuracy Accuracy)> Rows() =>
    [
        .. QuestionType.All.Select(t => (t, _types[t])),
        ("coarse", Coarse),
        ("fine", Fine),
        ("describe_objects", DescribeObjects),
        ("overall", Overall),
    ];

    /// <summary>A plain-text table: name, correct, total and accuracy (a dash when nothing was asked).</summary>
    public string ToTable()
    {
        var text = new StringBuilder();
        text.Append(CultureInfo.InvariantCulture, $"{"",-18}{"correct",8}{"total",8}{"accuracy",10}\n");
        var rows = Rows();
        for (int i = 0; i < rows.Count; i++)
        {
            if (i == QuestionType.All.Count) text.Append(new string('-', 44)).Append('\n');
            var (name, accuracy) = rows[i];
            var value = accuracy.Value is { } v ? (100 * v).ToString("0.0", CultureInfo.InvariantCulture) + "%" : "-";
            text.Append(CultureInfo.InvariantCulture, $"{name,-18}{accuracy.Correct,8}{accuracy.Total,8}{value,10}\n");
        }
        return text.ToString();
    }

    /// <summary>
    /// The report as JSON: <c>overall</c>, <c>coarse</c>, <c>fine</c>, <c>describe</c>, <c>describe_objects</c>,
    /// <c>draw</c> and <c>types</c> (one entry per type), each <c>{"correct": n, "total": n, "accuracy": x or null}</c>.
    /// </summary>
    public string ToJson(bool indented = false)
    {
        using var stream = new MemoryStream();
        using (var json = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = indented }))
        {
            json.WriteStartObject();
            Write(json, "overall", Overall);
            Write(json, "coarse", Coarse);
            Write(json, "fine", Fine);
            Write(json, "describe", Describe);
            Write(json, "describe_objects", DescribeObjects);
            Write(json, "draw", Draw);
            json.WriteStartObject("types");
            foreach (var type in QuestionType.All) Write(json, type, _types[type]);
            json.WriteEndObject();
            json.WriteEndObject();
        }
        return Encoding.UTF8.GetString(stream.ToArray());
    }

    static void Write(Utf8JsonWriter json, string name, Accuracy accuracy)
    {
        json.WriteStartObject(name);
        json.WriteNumber("correct", accuracy.Correct);
        json.WriteNumber("total", accuracy.Total);
        if (accuracy.Value is { } value) json.WriteNumber("accuracy", value);
        else json.WriteNull("accuracy");
        json.WriteEndObject();
    }
}
