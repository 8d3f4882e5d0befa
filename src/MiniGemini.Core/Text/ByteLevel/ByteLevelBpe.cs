using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using Microsoft.ML.Tokenizers;

namespace MiniGemini.Text.ByteLevel;

/// <summary>
/// Byte-level BPE (Llama-3 and other tiktoken-style vocabularies). Encoding runs on Microsoft.ML.Tokenizers:
/// <see cref="TiktokenTokenizer"/> for a tiktoken rank file, or for a <c>tokenizer.json</c> whose BPE has
/// <c>ignore_merges</c> (its merges are then the ranks, as in Llama-3); <see cref="BpeTokenizer"/> with explicit
/// merges otherwise. Decoding uses the vocabulary's bytes directly so that it can stream.
/// </summary>
internal sealed class ByteLevelBpe : ITokenizerModel
{
    /// <summary>Meta's Llama-3 split pattern (<c>tokenizer.py</c>), used when only the tiktoken file is present.</summary>
    internal const string Llama3Pattern =
        @"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

    /// <summary>GPT-2's pattern, what a <c>ByteLevel</c> pre-tokenizer with <c>use_regex</c> applies.</summary>
    internal const string Gpt2Pattern = @"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+";

    readonly Tokenizer _encoder;
    readonly byte[]?[] _bytes;
    readonly string?[] _tokens;
    readonly Dictionary<string, int> _ids;

    ByteLevelBpe(Tokenizer encoder, byte[]?[] bytes)
    {
        _encoder = encoder;
        _bytes = bytes;
        _tokens = new string?[bytes.Length];
        _ids = new Dictionary<string, int>(bytes.Length, StringComparer.Ordinal);
        for (var id = 0; id < bytes.Length; id++)
        {
            if (bytes[id] is not { } b) continue;
            var token = ByteLevelAlphabet.ToToken(b);
            _tokens[id] = token;
            _ids.TryAdd(token, id);
        }
    }

    public int Count => _bytes.Length;

    public void Encode(string text, bool isFirstSegment, List<int> output)
    {
        if (text.Length > 0) output.AddRange(_encoder.EncodeToIds(text, considerPreTokenization: true, considerNormalization: false));
    }

    public int? TokenToId(string token) => _ids.TryGetValue(token, out var id) ? id : null;

    public string? IdToToken(int id) => id >= 0 && id < _tokens.Length ? _tokens[id] : null;

    public IIncrementalDecoder CreateDecoder() => new ByteLevelDecoder(this);

    internal ReadOnlySpan<byte> BytesOf(int id) =>
        id >= 0 && id < _bytes.Length && _bytes[id] is { } b ? b : throw new ArgumentOutOfRangeException(nameof(id), id, "Not a token of the vocabulary.");

    /// <summary>Loads a tiktoken rank file (<c>base64-bytes rank</c> per line, e.g. Llama-3's <c>original/tokenizer.model</c>).</summary>
    public static ByteLevelBpe FromTiktokenFile(string path, IReadOnlyDictionary<string, int> specialTokens, string pattern)
    {
        byte[] content;
        try
        {
            content = File.ReadAllBytes(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new ModelLoadException($"Cannot read the tiktoken file '{path}': {e.Message}", path, inner: e);
        }
        var ranks = ParseTiktoken(content, path);
        return new ByteLevelBpe(CreateTiktoken(content, path, specialTokens, pattern), ToTable(ranks));
    }

    /// <summary>True when <paramref name="content"/> looks like a tiktoken rank file rather than a protobuf.</summary>
    public static bool IsTiktokenFile(ReadOnlySpan<byte> content)
    {
        var firstLine = content[..Math.Min(content.Length, 256)];
        var newline = firstLine.IndexOf((byte)'\n');
        if (newline > 0) firstLine = firstLine[..newline];
        var space = firstLine.IndexOf((byte)' ');
        if (space <= 0) return false;
        foreach (var b in firstLine)
            if (!(b is (byte)' ' or (byte)'+' or (byte)'/' or (byte)'=' or (byte)'\r' || char.IsAsciiLetterOrDigit((char)b))) return false;
        return true;
    }

    /// <summary>Loads the BPE of a Hugging Face <c>tokenizer.json</c> whose pre-tokenizer or decoder is ByteLevel.</summary>
    public static ByteLevelBpe FromTokenizerJson(string path, JsonElement root, IReadOnlyDictionary<string, int> specialTokens)
    {
        if (!root.TryGetProperty("model", out var model) || model.ValueKind != JsonValueKind.Object)
            throw new ModelLoadException($"{path}: no \"model\" object.", path);
        var type = model.TryGetProperty("type", out var t) ? t.GetString() : null;
        if (type != "BPE")
            throw new ModelLoadException($"{path}: model.type \"{type}\" is not supported; only byte-level BPE is.", path);
        if (!IsByteLevel(root))
            throw new ModelLoadException(
                $"{path}: this BPE is not byte-level (SentencePiece-style); put the SentencePiece tokenizer.model next to it.", path);
        if (root.TryGetProperty("normalizer", out var normalizer) && normalizer.ValueKind != JsonValueKind.Null)
            throw new ModelLoadException($"{path}: a normalizer is not supported for byte-level BPE.", path);

        if (!model.TryGetProperty("vocab", out var vocabElement) || vocabElement.ValueKind != JsonValueKind.Object)
            throw new ModelLoadException($"{path}: model.vocab is missing.", path);
        var vocab = new List<KeyValuePair<string, int>>();
        var ranks = new List<(byte[] Bytes, int Id)>();
        foreach (var entry in vocabElement.EnumerateObject())
        {
            if (!entry.Value.TryGetInt32(out var id) || id < 0)
                throw new ModelLoadException($"{path}: model.vocab[\"{entry.Name}\"] is not a valid id.", path);
            var bytes = ByteLevelAlphabet.ToBytes(entry.Name)
                ?? throw new ModelLoadException($"{path}: vocabulary token \"{entry.Name}\" is not in the byte-level alphabet.", path);
            vocab.Add(new(entry.Name, id));
            ranks.Add((bytes, id));
        }

        var pattern = FindPattern(root, path);
        var ignoreMerges = model.TryGetProperty("ignore_merges", out var im) && im.ValueKind == JsonValueKind.True;
        Tokenizer encoder;
        if (ignoreMerges)
        {
            // Merge order equals rank order here (a tiktoken vocabulary converted to tokenizer.json): tiktoken is exact.
            var file = new StringBuilder();
            foreach (var (bytes, id) in ranks.OrderBy(r => r.Id))
                file.Append(Convert.ToBase64String(bytes)).Append(' ').Append(id).Append('\n');
            encoder = CreateTiktoken(Encoding.ASCII.GetBytes(file.ToString()), path, specialTokens, pattern);
        }
        else
        {
            encoder = BpeTokenizer.Create(new BpeOptions(vocab)
            {
                Merges = ReadMerges(model, path),
                ByteLevel = true,
                PreTokenizer = new RegexPreTokenizer(new Regex(pattern, RegexOptions.Compiled), specialTokens),
                SpecialTokens = specialTokens,
            });
        }
        return new ByteLevelBpe(encoder, ToTable(ranks));
    }

    static Tokenizer CreateTiktoken(byte[] file, string path, IReadOnlyDictionary<string, int> specialTokens, string pattern)
    {
        try
        {
            var preTokenizer = new RegexPreTokenizer(new Regex(pattern, RegexOptions.Compiled), specialTokens);
            return TiktokenTokenizer.Create(new MemoryStream(file), preTokenizer, normalizer: null, specialTokens);
        }
        catch (Exception e) when (e is FormatException or ArgumentException or InvalidOperationException)
        {
            throw new ModelLoadException($"{path}: cannot build the tiktoken tokenizer: {e.Message}", path, inner: e);
        }
    }

    static List<(byte[] Bytes, int Id)> ParseTiktoken(byte[] content, string path)
    {
        var ranks = new List<(byte[], int)>();
        var lineNumber = 0;
        foreach (var raw in Encoding.ASCII.GetString(content).Split('\n'))
        {
            lineNumber++;
            var line = raw.TrimEnd('\r');
            if (line.Length == 0) continue;
            var parts = line.Split(' ');
            if (parts.Length != 2 || !int.TryParse(parts[1], System.Globalization.NumberStyles.None, null, out var rank))
                throw new ModelLoadException($"{path}: line {lineNumber} is not \"<base64> <rank>\".", path);
            try
            {
                ranks.Add((Convert.FromBase64String(parts[0]), rank));
            }
            catch (FormatException e)
            {
                throw new ModelLoadException($"{path}: line {lineNumber} has invalid base64.", path, inner: e);
            }
        }
        if (ranks.Count == 0) throw new ModelLoadException($"{path}: the tiktoken file is empty.", path);
        return ranks;
    }

    static byte[]?[] ToTable(List<(byte[] Bytes, int Id)> ranks)
    {
        var table = new byte[]?[ranks.Max(r => r.Id) + 1];
        foreach (var (bytes, id) in ranks) table[id] = bytes;
        return table;
    }

    static bool IsByteLevel(JsonElement root) =>
        Mentions(root, "pre_tokenizer", "ByteLevel") || Mentions(root, "decoder", "ByteLevel");

    static bool Mentions(JsonElement root, string section, string type) =>
        root.TryGetProperty(section, out var s) && s.ValueKind == JsonValueKind.Object && Components(s).Any(c => TypeOf(c) == type);

    /// <summary>The component itself, or its parts when it is a Sequence.</summary>
    static IEnumerable<JsonElement> Components(JsonElement element)
    {
        yield return element;
        foreach (var key in new[] { "pretokenizers", "decoders" })
            if (element.TryGetProperty(key, out var list) && list.ValueKind == JsonValueKind.Array)
                foreach (var child in list.EnumerateArray()) yield return child;
    }

    static string? TypeOf(JsonElement e) =>
        e.ValueKind == JsonValueKind.Object && e.TryGetProperty("type", out var t) ? t.GetString() : null;

    static string FindPattern(JsonElement root, string path) =>
        TryFindPattern(root, path) ?? throw new ModelLoadException($"{path}: the pre_tokenizer has no split pattern.", path);

    /// <summary>The split pattern: a Split pre-tokenizer's regex, else GPT-2's when ByteLevel splits itself; null if neither.</summary>
    internal static string? TryFindPattern(JsonElement root, string path)
    {
        if (!root.TryGetProperty("pre_tokenizer", out var pre) || pre.ValueKind != JsonValueKind.Object) return null;
        string? pattern = null;
        foreach (var c in Components(pre))
        {
            switch (TypeOf(c))
            {
                case "Split" when c.TryGetProperty("pattern", out var p) && p.TryGetProperty("Regex", out var regex):
                    pattern = regex.GetString();
                    break;
                case "ByteLevel":
                    if (c.TryGetProperty("add_prefix_space", out var aps) && aps.ValueKind == JsonValueKind.True)
                        throw new ModelLoadException($"{path}: ByteLevel add_prefix_space = true is not supported.", path);
                    if (!(c.TryGetProperty("use_regex", out var ur) && ur.ValueKind == JsonValueKind.False))
                        pattern ??= Gpt2Pattern;
                    break;
            }
        }
        return pattern;
    }

    static List<string> ReadMerges(JsonElement model, string path)
    {
        var merges = new List<string>();
        if (!model.TryGetProperty("merges", out var list) || list.ValueKind != JsonValueKind.Array) return merges;
        foreach (var merge in list.EnumerateArray())
        {
            merges.Add(merge.ValueKind switch
            {
                JsonValueKind.String => merge.GetString()!,
                JsonValueKind.Array when merge.GetArrayLength() == 2 => $"{merge[0].GetString()} {merge[1].GetString()}",
                _ => throw new ModelLoadException($"{path}: model.merges entry {merges.Count} is neither \"a b\" nor [\"a\", \"b\"].", path),
            });
        }
        return merges;
    }
}

/// <summary>GPT-2's reversible byte ↔ printable-character map used by byte-level vocabularies (Ġ is a space).</summary>
internal static class ByteLevelAlphabet
{
    static readonly char[] ByteToChar = BuildMap();
    static readonly Dictionary<char, byte> CharToByte =
        Enumerable.Range(0, 256).ToDictionary(b => ByteToChar[b], b => (byte)b);

    public static string ToToken(ReadOnlySpan<byte> bytes)
    {
        var chars = new char[bytes.Length];
        for (var i = 0; i < bytes.Length; i++) chars[i] = ByteToChar[bytes[i]];
        return new string(chars);
    }

    public static byte[]? ToBytes(string token)
    {
        var bytes = new byte[token.Length];
        for (var i = 0; i < token.Length; i++)
        {
            if (!CharToByte.TryGetValue(token[i], out var b)) return null;
            bytes[i] = b;
        }
        return bytes;
    }

    static char[] BuildMap()
    {
        var map = new char[256];
        var next = 256;
        for (var b = 0; b < 256; b++)
        {
            var printable = b is >= '!' and <= '~' or >= 0xA1 and <= 0xAC or >= 0xAE and <= 0xFF;
            map[b] = (char)(printable ? b : next++);
        }
        return map;
    }
}
