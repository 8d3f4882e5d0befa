using System.Text.Json;

namespace MiniGemini.Text;

/// <summary>
/// The JSON files of a Hugging Face model folder that describe its tokenizer, each optional:
/// <c>tokenizer.json</c>, <c>tokenizer_config.json</c>, <c>special_tokens_map.json</c>,
/// <c>generation_config.json</c>, <c>config.json</c>. Malformed JSON raises <see cref="ModelLoadException"/>.
/// </summary>
internal sealed class TokenizerFolder
{
    public const string SentencePieceFile = "tokenizer.model";
    public const string TokenizerJsonFile = "tokenizer.json";
    public const string TiktokenFallbackFile = "original/tokenizer.model";

    TokenizerFolder(string path) => Path = path;

    public string Path { get; }
    /// <summary>Parsed on demand (<see cref="LoadTokenizerJson"/>): it can be large and SentencePiece folders rarely need it.</summary>
    public JsonElement? TokenizerJson { get; private set; }
    public JsonElement? TokenizerConfig { get; private set; }
    public JsonElement? SpecialTokensMap { get; private set; }
    public JsonElement? GenerationConfig { get; private set; }
    public JsonElement? ModelConfig { get; private set; }

    public string FileOf(string name) => System.IO.Path.Combine(Path, name);

    public static TokenizerFolder Open(string path)
    {
        if (!Directory.Exists(path))
            throw new ModelLoadException($"Tokenizer folder '{path}' does not exist.", path);
        return new TokenizerFolder(path)
        {
            TokenizerConfig = ReadJson(System.IO.Path.Combine(path, "tokenizer_config.json")),
            SpecialTokensMap = ReadJson(System.IO.Path.Combine(path, "special_tokens_map.json")),
            GenerationConfig = ReadJson(System.IO.Path.Combine(path, "generation_config.json")),
            ModelConfig = ReadJson(System.IO.Path.Combine(path, "config.json")),
        };
    }

    public JsonElement? LoadTokenizerJson() => TokenizerJson ??= ReadJson(FileOf(TokenizerJsonFile));

    static JsonElement? ReadJson(string file)
    {
        if (!File.Exists(file)) return null;
        try
        {
            using var stream = File.OpenRead(file);
            using var doc = JsonDocument.Parse(stream, new JsonDocumentOptions { AllowTrailingCommas = true });
            if (doc.RootElement.ValueKind != JsonValueKind.Object)
                throw new ModelLoadException($"{file}: expected a JSON object at the top level.", file);
            return doc.RootElement.Clone();
        }
        catch (JsonException e)
        {
            throw new ModelLoadException($"{file}: invalid JSON ({e.Message}).", file, inner: e);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new ModelLoadException($"Cannot read '{file}': {e.Message}", file, inner: e);
        }
    }

    IEnumerable<(string File, JsonElement Json)> TokenConfigs()
    {
        if (TokenizerConfig is { } config) yield return (FileOf("tokenizer_config.json"), config);
        if (SpecialTokensMap is { } map) yield return (FileOf("special_tokens_map.json"), map);
    }

    /// <summary>
    /// A special-token setting by name (<c>bos_token</c>, …): tokenizer_config.json first, then
    /// special_tokens_map.json. <c>File</c> is the file that sets the key (null when none does); <c>Content</c> is
    /// null when it sets the key to null ("no such token").
    /// </summary>
    public (string? File, string? Content) SpecialTokenSetting(string key)
    {
        foreach (var (file, json) in TokenConfigs())
            if (json.TryGetProperty(key, out var value)) return (file, TokenContent(value));
        return (null, null);
    }

    /// <summary>Contents of <c>additional_special_tokens</c> from both files, with the file that lists each.</summary>
    public IEnumerable<(string File, string Content)> AdditionalSpecialTokens()
    {
        foreach (var (file, json) in TokenConfigs())
        {
            if (!json.TryGetProperty("additional_special_tokens", out var list) || list.ValueKind != JsonValueKind.Array) continue;
            foreach (var item in list.EnumerateArray())
                if (TokenContent(item) is { } content) yield return (file, content);
        }
    }

    /// <summary>A token written as a string or as an AddedToken object (<c>{"content": …}</c>).</summary>
    static string? TokenContent(JsonElement value) => value.ValueKind switch
    {
        JsonValueKind.String => value.GetString(),
        JsonValueKind.Object when value.TryGetProperty("content", out var c) => c.GetString(),
        _ => null,
    };

    public bool? ConfigBool(string key) =>
        TokenizerConfig is { } json && json.TryGetProperty(key, out var v) && v.ValueKind is JsonValueKind.True or JsonValueKind.False
            ? v.GetBoolean()
            : null;

    /// <summary>Added tokens declared in tokenizer.json (<c>added_tokens</c>) and tokenizer_config.json (<c>added_tokens_decoder</c>).</summary>
    public List<AddedToken> DeclaredAddedTokens(JsonElement? tokenizerJson)
    {
        var tokens = new List<AddedToken>();
        if (tokenizerJson is { } tj && tj.TryGetProperty("added_tokens", out var list) && list.ValueKind == JsonValueKind.Array)
        {
            foreach (var item in list.EnumerateArray())
            {
                if (!item.TryGetProperty("id", out var idElement) || !idElement.TryGetInt32(out var id))
                    throw new ModelLoadException($"{FileOf(TokenizerJsonFile)}: an added_tokens entry has no integer id.", FileOf(TokenizerJsonFile));
                tokens.Add(ReadAddedToken(item, id, FileOf(TokenizerJsonFile)));
            }
        }
        if (TokenizerConfig is { } tc && tc.TryGetProperty("added_tokens_decoder", out var decoder) && decoder.ValueKind == JsonValueKind.Object)
        {
            foreach (var entry in decoder.EnumerateObject())
            {
                if (!int.TryParse(entry.Name, out var id))
                    throw new ModelLoadException($"{FileOf("tokenizer_config.json")}: added_tokens_decoder key \"{entry.Name}\" is not an id.", FileOf("tokenizer_config.json"));
                tokens.Add(ReadAddedToken(entry.Value, id, FileOf("tokenizer_config.json")));
            }
        }
        return tokens;
    }

    static AddedToken ReadAddedToken(JsonElement item, int id, string file)
    {
        var content = item.TryGetProperty("content", out var c) ? c.GetString() : null;
        if (string.IsNullOrEmpty(content))
            throw new ModelLoadException($"{file}: added token {id} has no content.", file);
        bool Flag(string name) => item.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.True;
        return new AddedToken(content, id, Flag("special"), Flag("lstrip"), Flag("rstrip"));
    }

    /// <summary>Integer ids under <paramref name="key"/> (a number or a list) in generation_config.json, then config.json.</summary>
    public IEnumerable<int> ConfigIds(string key)
    {
        foreach (var source in new[] { GenerationConfig, ModelConfig })
        {
            if (source is not { } json) continue;
            var holder = json.TryGetProperty(key, out _) ? json
                : json.TryGetProperty("text_config", out var text) && text.ValueKind == JsonValueKind.Object ? text
                : (JsonElement?)null;
            if (holder is not { } h || !h.TryGetProperty(key, out var value)) continue;
            if (value.ValueKind == JsonValueKind.Number && value.TryGetInt32(out var single)) yield return single;
            else if (value.ValueKind == JsonValueKind.Array)
                foreach (var item in value.EnumerateArray())
                    if (item.TryGetInt32(out var id)) yield return id;
        }
    }
}
