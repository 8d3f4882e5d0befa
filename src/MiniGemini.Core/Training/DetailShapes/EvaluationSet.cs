using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;

namespace MiniGemini.Training.DetailShapes;

/// <summary>One line of an evaluation file: a question, its expected answer and type, and the image it is about.</summary>
/// <param name="Type">One of <see cref="QuestionType.All"/>.</param>
/// <param name="Question">The question text.</param>
/// <param name="Answer">The expected answer.</param>
/// <param name="Image">
/// The picture: as written in the file when writing; when read by <see cref="EvaluationSet.Read"/>, the full path
/// (relative paths are taken from the file's folder). Null for draw requests.
/// </param>
public sealed record EvaluationItem(string Type, string Question, string Answer, string? Image = null)
{
    /// <summary>An item for a generated question.</summary>
    internal static EvaluationItem From(TaskQuestion question, string? image) =>
        new(question.Type, question.Question, question.Answer, image);
}

/// <summary>
/// Evaluation files in JSON Lines, one object a line:
/// <c>{"image": "relative/or/absolute.png", "question": "...", "answer": "...", "type": "digit"}</c>, <c>image</c>
/// absent for <c>draw</c>. Blank lines are skipped; other properties are ignored.
/// </summary>
public static class EvaluationSet
{
    /// <summary>The questions file <see cref="EvaluationSetWriter"/> writes in its folder.</summary>
    public const string QuestionsFileName = "questions.jsonl";

    static readonly JsonSerializerOptions WriteOptions = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    /// <summary>Reads a file, resolving image paths against its folder.</summary>
    /// <param name="path">The JSON Lines file.</param>
    /// <param name="checkImages">Also check that every image file exists (so a run fails before any work).</param>
    /// <exception cref="FileNotFoundException">The file does not exist.</exception>
    /// <exception cref="EvaluationFileException">
    /// A line is not a JSON object, lacks question, answer or type (or image, for a type other than draw), has a field
    /// of the wrong kind or an unknown type, or (with <paramref name="checkImages"/>) names a missing image.
    /// </exception>
    public static IReadOnlyList<EvaluationItem> Read(string path, bool checkImages = false)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(path);
        var full = Path.GetFullPath(path);
        if (!File.Exists(full)) throw new FileNotFoundException($"Evaluation file not found: {full}", full);
        var folder = Path.GetDirectoryName(full)!;
        var items = new List<EvaluationItem>();
        int number = 0;
        foreach (var line in File.ReadLines(full, Encoding.UTF8))
        {
            number++;
            if (string.IsNullOrWhiteSpace(line)) continue;
            var item = Parse(line, full, number);
            if (item.Image is { } image)
            {
                var resolved = Path.GetFullPath(Path.Combine(folder, image));
                if (checkImages && !File.Exists(resolved))
                    throw new EvaluationFileException(full, number, $"image not found: {resolved}");
                item = item with { Image = resolved };
            }
            items.Add(item);
        }
        return items;
    }

    /// <summary>Writes items to a file, one JSON object a line, image paths as given.</summary>
    public static void Write(string path, IEnumerable<EvaluationItem> items)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(path);
        using var writer = new StreamWriter(path, append: false, new UTF8Encoding(encoderShouldEmitUTF8Identifier: false));
        Write(writer, items);
    }

    /// <summary>Writes items, one JSON object a line (keys image, question, answer, type; image left out when null).</summary>
    public static void Write(TextWriter writer, IEnumerable<EvaluationItem> items)
    {
        ArgumentNullException.ThrowIfNull(writer);
        ArgumentNullException.ThrowIfNull(items);
        foreach (var item in items) writer.Write(ToJsonLine(item) + "\n");
    }

    /// <summary>One item as a JSON object on one line (no line break).</summary>
    public static string ToJsonLine(EvaluationItem item)
    {
        ArgumentNullException.ThrowIfNull(item);
        var fields = new Dictionary<string, string>();
        if (item.Image is not null) fields["image"] = item.Image.Replace('\\', '/');
        fields["question"] = item.Question;
        fields["answer"] = item.Answer;
        fields["type"] = item.Type;
        return JsonSerializer.Serialize(fields, WriteOptions);
    }

    static EvaluationItem Parse(string line, string path, int number)
    {
        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(line);
        }
        catch (JsonException e)
        {
            throw new EvaluationFileException(path, number, $"not valid JSON ({e.Message})", e);
        }
        using (document)
        {
            var root = document.RootElement;
            if (root.ValueKind != JsonValueKind.Object)
                throw new EvaluationFileException(path, number, $"expected a JSON object, found {Kind(root.ValueKind)}");
            var type = Text(root, "type", path, number, required: true)!;
            if (!QuestionType.IsKnown(type))
                throw new EvaluationFileException(path, number, $"unknown type '{type}' (expected one of {string.Join(", ", QuestionType.All)})");
            var question = Text(root, "question", path, number, required: true)!;
            var answer = Text(root, "answer", path, number, required: true)!;
            var image = Text(root, "image", path, number, required: type != QuestionType.Draw);
            if (image is { Length: 0 }) throw new EvaluationFileException(path, number, "\"image\" is empty");
            return new EvaluationItem(type, question, answer, image);
        }
    }

    static string? Text(JsonElement root, string name, string path, int number, bool required)
    {
        if (!root.TryGetProperty(name, out var value) || value.ValueKind == JsonValueKind.Null)
            return required ? throw new EvaluationFileException(path, number, $"missing \"{name}\"") : null;
        return value.ValueKind switch
        {
            JsonValueKind.String => value.GetString()!,
            // A digit or count written as a number still names the answer.
            JsonValueKind.Number when name == "answer" => value.GetRawText(),
            _ => throw new EvaluationFileException(path, number, $"\"{name}\" should be a string, found {Kind(value.ValueKind)}"),
        };
    }

    static string Kind(JsonValueKind kind) => kind switch
    {
        JsonValueKind.Object => "an object",
        JsonValueKind.Array => "an array",
        JsonValueKind.String => "a string",
        JsonValueKind.Number => "a number",
        JsonValueKind.True or JsonValueKind.False => "a boolean",
        JsonValueKind.Null => "null",
        _ => "nothing",
    };
}
