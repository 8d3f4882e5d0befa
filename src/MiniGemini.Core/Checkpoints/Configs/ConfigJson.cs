using System.Text.Json;
using System.Text.Json.Nodes;

namespace MiniGemini.Checkpoints;

/// <summary>Typed reads from a config.json object, with errors that name the file and the key.</summary>
internal sealed class ConfigJson
{
    readonly JsonObject _json;

    public ConfigJson(JsonObject json, string file)
    {
        _json = json;
        File = file;
    }

    public string File { get; }

    public static ConfigJson Load(string path)
    {
        path = Path.GetFullPath(path);
        if (!System.IO.File.Exists(path)) throw ModelLoadException.Config($"{path}: file not found.", path);
        return Parse(System.IO.File.ReadAllText(path), path);
    }

    /// <summary>Parses config text (comments and trailing commas are accepted, from a file or not).</summary>
    public static ConfigJson Parse(string json, string source = "<json>")
    {
        try
        {
            var node = JsonNode.Parse(json, documentOptions: new JsonDocumentOptions { AllowTrailingCommas = true, CommentHandling = JsonCommentHandling.Skip });
            return node is JsonObject obj ? new ConfigJson(obj, source) : throw ModelLoadException.Config($"{source}: not a JSON object.", source);
        }
        catch (JsonException e)
        {
            throw ModelLoadException.Config($"{source}: not valid JSON ({e.Message}).", source, inner: e);
        }
    }

    public bool Has(string key) => _json.TryGetPropertyValue(key, out var v) && v is not null;

    public ConfigJson? Section(string key) =>
        _json.TryGetPropertyValue(key, out var v) && v is JsonObject o ? new ConfigJson(o, File) : null;

    public int Int(string key) => OptionalInt(key) ?? throw Missing(key);

    public int? OptionalInt(params string[] keys) => Get(keys, n => n.GetValueKind() == JsonValueKind.Number && n.AsValue().TryGetValue(out int i) ? i : (int?)null, "an integer");

    public double Double(string key) => OptionalDouble(key) ?? throw Missing(key);

    public double? OptionalDouble(params string[] keys) => Get(keys, n => n.GetValueKind() == JsonValueKind.Number ? n.GetValue<double>() : (double?)null, "a number");

    public bool? OptionalBool(params string[] keys) => Get(keys, n => n.GetValueKind() switch
    {
        JsonValueKind.True => true,
        JsonValueKind.False => false,
        _ => (bool?)null,
    }, "true or false");

    public string? OptionalString(params string[] keys) => Get(keys, n => n.GetValueKind() == JsonValueKind.String ? n.GetValue<string>() : null, "a string");

    public IReadOnlyList<string> Strings(string key) =>
        _json.TryGetPropertyValue(key, out var v) && v is JsonArray a
            ? a.Select(x => x?.GetValueKind() == JsonValueKind.String ? x.GetValue<string>() : throw Invalid(key, "an array of strings")).ToList()
            : [];

    /// <summary>An integer or an array of integers (e.g. <c>eos_token_id</c>), as a list; empty when absent or null.</summary>
    public IReadOnlyList<int> IntOrInts(string key)
    {
        if (!_json.TryGetPropertyValue(key, out var v) || v is null) return [];
        if (v is JsonArray a) return a.Select(x => x is JsonValue xv && xv.TryGetValue(out int i) ? i : throw Invalid(key, "an integer or an array of integers")).ToList();
        return v is JsonValue value && value.TryGetValue(out int single) ? [single] : throw Invalid(key, "an integer or an array of integers");
    }

    public IReadOnlyList<int> Ints(string key) =>
        _json.TryGetPropertyValue(key, out var v) && v is JsonArray a
            ? a.Select(x => x is JsonValue xv && xv.TryGetValue(out int i) ? i : throw Invalid(key, "an array of integers")).ToList()
            : throw Missing(key);

    public IReadOnlyList<double>? OptionalDoubles(string key) =>
        _json.TryGetPropertyValue(key, out var v) && v is JsonArray a
            ? a.Select(x => x is JsonValue xv && xv.TryGetValue(out double d) ? d : throw Invalid(key, "an array of numbers")).ToList()
            : null;

    T? Get<T>(string[] keys, Func<JsonNode, T?> read, string expected)
    {
        foreach (var key in keys)
        {
            if (!_json.TryGetPropertyValue(key, out var node) || node is null) continue;
            return read(node) ?? throw Invalid(key, expected);
        }
        return default;
    }

    public ModelLoadException Missing(string key) => ModelLoadException.Config($"{File}: required field '{key}' is missing.", File, key);

    public ModelLoadException Invalid(string key, string expected) =>
        ModelLoadException.Config($"{File}: field '{key}' must be {expected} (found {_json[key]?.ToJsonString() ?? "null"}).", File, key);
}
