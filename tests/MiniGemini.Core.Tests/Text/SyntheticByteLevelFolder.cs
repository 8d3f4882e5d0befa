using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;

namespace MiniGemini.Tests.Text;

/// <summary>
/// A small Llama-3-style byte-level BPE built here (no real Llama-3 vocabulary is available offline): byte tokens
/// 0–255, merges learned greedily from a corpus split with the Llama-3 pattern, then Llama-3's special tokens.
/// It is written to a temporary folder in one of the layouts a model folder can have, and comes with two
/// independent reference encoders (tiktoken's rank rule and Hugging Face's merge-list rule).
/// </summary>
public sealed class SyntheticByteLevelFolder : IDisposable
{
    public enum Layout
    {
        /// <summary>tokenizer.json with ignore_merges (as Llama-3's) + tokenizer_config.json + generation_config.json.</summary>
        TokenizerJson,
        /// <summary>tokenizer.json whose BPE applies its merges (ignore_merges false), same configs.</summary>
        TokenizerJsonWithMerges,
        /// <summary>Only original/tokenizer.model (tiktoken ranks) and tokenizer_config.json.</summary>
        TiktokenOriginal,
    }

    public const string Pattern =
        @"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

    static readonly Regex Splitter = new(Pattern, RegexOptions.Compiled);

    public static readonly string[] SpecialNames =
    [
        "<|begin_of_text|>", "<|end_of_text|>", "<|reserved_special_token_0|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>",
    ];

    const string Corpus = """
        Mini-Gemini mines patch info from a high-resolution view for every low-resolution token.
        The quick brown fox jumps over the lazy dog; the dog sleeps. It's what they've said, isn't it?
        def forward(self, x): return self.proj(x) + x  # residual 12345 67890
        Café naïve façade — “quoted” text… 漢字かな交じり文 😀🚀 and numbers 3.14159 2.71828
        USER: <image>\nWhat is shown in this picture? ASSISTANT: A cat sitting on a red sofa.
        """;

    static readonly Lazy<Vocabulary> Trained = new(() => Train(Corpus, merges: 320));

    SyntheticByteLevelFolder(string path) => Path = path;

    public string Path { get; }

    public static Vocabulary Vocab => Trained.Value;

    public static int SpecialId(string name) => Vocab.TokenBytes.Count + Array.IndexOf(SpecialNames, name);

    public static SyntheticByteLevelFolder Create(Layout layout, bool cleanUpSpaces = false)
    {
        var dir = Directory.CreateTempSubdirectory("mgm-bytelevel-").FullName;
        var folder = new SyntheticByteLevelFolder(dir);
        var v = Vocab;
        var config = new Dictionary<string, object?>
        {
            ["bos_token"] = "<|begin_of_text|>",
            ["eos_token"] = "<|end_of_text|>",
            ["clean_up_tokenization_spaces"] = cleanUpSpaces,
            ["added_tokens_decoder"] = SpecialNames.ToDictionary(
                n => SpecialId(n).ToString(System.Globalization.CultureInfo.InvariantCulture),
                n => (object)new { content = n, lstrip = false, normalized = false, rstrip = false, single_word = false, special = true }),
        };
        if (layout == Layout.TiktokenOriginal)
        {
            Directory.CreateDirectory(System.IO.Path.Combine(dir, "original"));
            File.WriteAllText(System.IO.Path.Combine(dir, "original", "tokenizer.model"), TiktokenFile(v));
            config["add_bos_token"] = true;
        }
        else
        {
            File.WriteAllText(System.IO.Path.Combine(dir, "tokenizer.json"), TokenizerJson(v, ignoreMerges: layout == Layout.TokenizerJson));
            File.WriteAllText(System.IO.Path.Combine(dir, "generation_config.json"),
                JsonSerializer.Serialize(new { eos_token_id = new[] { SpecialId("<|end_of_text|>"), SpecialId("<|eot_id|>") } }));
        }
        File.WriteAllText(System.IO.Path.Combine(dir, "tokenizer_config.json"), JsonSerializer.Serialize(config));
        return folder;
    }

    public void Dispose()
    {
        try { Directory.Delete(Path, recursive: true); } catch (IOException) { }
    }

    public static string TiktokenFile(Vocabulary v) =>
        string.Concat(v.TokenBytes.Select((bytes, id) => $"{Convert.ToBase64String(bytes)} {id}\n"));

    static string TokenizerJson(Vocabulary v, bool ignoreMerges)
    {
        var vocab = v.TokenBytes.Select((bytes, id) => (Token: ToByteLevel(bytes), Id: id)).ToDictionary(t => t.Token, t => t.Id);
        var merges = v.Merges.Select(m => new[] { ToByteLevel(v.TokenBytes[m.Left]), ToByteLevel(v.TokenBytes[m.Right]) }).ToArray();
        var json = new
        {
            version = "1.0",
            added_tokens = SpecialNames.Select(n => new { id = SpecialId(n), content = n, single_word = false, lstrip = false, rstrip = false, normalized = false, special = true }),
            normalizer = (object?)null,
            pre_tokenizer = new
            {
                type = "Sequence",
                pretokenizers = new object[]
                {
                    new { type = "Split", pattern = new { Regex = Pattern }, behavior = "Isolated", invert = false },
                    new { type = "ByteLevel", add_prefix_space = false, trim_offsets = true, use_regex = false },
                },
            },
            post_processor = new
            {
                type = "Sequence",
                processors = new object[]
                {
                    new { type = "ByteLevel", add_prefix_space = true, trim_offsets = false, use_regex = true },
                    new
                    {
                        type = "TemplateProcessing",
                        single = new object[] { new { SpecialToken = new { id = "<|begin_of_text|>", type_id = 0 } }, new { Sequence = new { id = "A", type_id = 0 } } },
                    },
                },
            },
            decoder = new { type = "ByteLevel", add_prefix_space = true, trim_offsets = true, use_regex = true },
            model = new
            {
                type = "BPE", dropout = (object?)null, unk_token = (object?)null, fuse_unk = false, byte_fallback = false,
                ignore_merges = ignoreMerges, vocab, merges,
            },
        };
        return JsonSerializer.Serialize(json);
    }

    // ---- training and reference encoders (independent of the library) ----

    public sealed record Vocabulary(List<byte[]> TokenBytes, List<(int Left, int Right)> Merges)
    {
        public Dictionary<string, int> RankOfBytes { get; } =
            TokenBytes.Select((b, id) => (Key: Convert.ToHexString(b), id)).ToDictionary(t => t.Key, t => t.id);
    }

    static Vocabulary Train(string corpus, int merges)
    {
        var tokens = Enumerable.Range(0, 256).Select(b => new[] { (byte)b }).ToList();
        var known = tokens.Select(Convert.ToHexString).ToHashSet();
        var words = Splitter.Matches(corpus).Select(m => Encoding.UTF8.GetBytes(m.Value).Select(b => (int)b).ToList()).ToList();
        var mergeList = new List<(int, int)>();
        while (mergeList.Count < merges)
        {
            var counts = new Dictionary<(int, int), int>();
            foreach (var w in words)
                for (var i = 0; i + 1 < w.Count; i++)
                    counts[(w[i], w[i + 1])] = counts.GetValueOrDefault((w[i], w[i + 1])) + 1;
            var best = counts
                .Where(kv => !known.Contains(Convert.ToHexString([.. tokens[kv.Key.Item1], .. tokens[kv.Key.Item2]])))
                .OrderByDescending(kv => kv.Value).ThenBy(kv => kv.Key.Item1).ThenBy(kv => kv.Key.Item2)
                .Select(kv => ((int, int)?)kv.Key).FirstOrDefault();
            if (best is not { } pair) break;
            var id = tokens.Count;
            tokens.Add([.. tokens[pair.Item1], .. tokens[pair.Item2]]);
            known.Add(Convert.ToHexString(tokens[id]));
            mergeList.Add(pair);
            foreach (var w in words)
                for (var i = 0; i + 1 < w.Count; i++)
                    if (w[i] == pair.Item1 && w[i + 1] == pair.Item2) { w[i] = id; w.RemoveAt(i + 1); }
        }
        return new Vocabulary(tokens, mergeList);
    }

    /// <summary>tiktoken: a whole piece in the vocabulary is one token; else merge the adjacent pair whose bytes rank lowest.</summary>
    public static List<int> EncodeTiktoken(string text) => EncodeWith(text, TiktokenPiece);

    /// <summary>Hugging Face BPE: apply the merge list (lowest merge index first, leftmost), optionally whole-word first.</summary>
    public static List<int> EncodeMerges(string text, bool ignoreMerges) => EncodeWith(text, w => MergePiece(w, ignoreMerges));

    static List<int> EncodeWith(string text, Func<byte[], IEnumerable<int>> piece)
    {
        var ids = new List<int>();
        foreach (var part in Regex.Split(text, "(" + string.Join("|", SpecialNames.Select(Regex.Escape)) + ")"))
        {
            if (part.Length == 0) continue;
            if (SpecialNames.Contains(part)) { ids.Add(SpecialId(part)); continue; }
            foreach (Match m in Splitter.Matches(part)) ids.AddRange(piece(Encoding.UTF8.GetBytes(m.Value)));
        }
        return ids;
    }

    static IEnumerable<int> TiktokenPiece(byte[] word)
    {
        var rank = Vocab.RankOfBytes;
        if (rank.TryGetValue(Convert.ToHexString(word), out var whole)) return [whole];
        var parts = word.Select(b => new[] { b }).ToList();
        while (true)
        {
            var (best, bestRank) = (-1, int.MaxValue);
            for (var i = 0; i + 1 < parts.Count; i++)
                if (rank.TryGetValue(Convert.ToHexString([.. parts[i], .. parts[i + 1]]), out var r) && r < bestRank) (best, bestRank) = (i, r);
            if (best < 0) break;
            parts[best] = [.. parts[best], .. parts[best + 1]];
            parts.RemoveAt(best + 1);
        }
        return parts.Select(p => rank[Convert.ToHexString(p)]);
    }

    static IEnumerable<int> MergePiece(byte[] word, bool ignoreMerges)
    {
        var v = Vocab;
        if (ignoreMerges && v.RankOfBytes.TryGetValue(Convert.ToHexString(word), out var whole)) return [whole];
        var mergeIndex = v.Merges.Select((m, i) => (m, i)).ToDictionary(t => t.m, t => t.i);
        var symbols = word.Select(b => (int)b).ToList();
        while (true)
        {
            var (best, bestIndex) = (-1, int.MaxValue);
            for (var i = 0; i + 1 < symbols.Count; i++)
                if (mergeIndex.TryGetValue((symbols[i], symbols[i + 1]), out var mi) && mi < bestIndex) (best, bestIndex) = (i, mi);
            if (best < 0) break;
            symbols[best] = 256 + bestIndex;
            symbols.RemoveAt(best + 1);
        }
        return symbols;
    }

    static string ToByteLevel(byte[] bytes)
    {
        var map = new char[256];
        var next = 256;
        for (var b = 0; b < 256; b++)
            map[b] = (char)(b is >= '!' and <= '~' or >= 0xA1 and <= 0xAC or >= 0xAE and <= 0xFF ? b : next++);
        return new string(bytes.Select(b => map[b]).ToArray());
    }
}

/// <summary>tokenizer-sp's tokenizer.model copied to a temporary folder next to a tokenizer_config.json.</summary>
public sealed class SentencePieceFolder : IDisposable
{
    SentencePieceFolder(string path) => Path = path;

    public string Path { get; }

    public static SentencePieceFolder WithConfig(string tokenizerConfigJson, string? tokenizerModel = null)
    {
        var dir = Directory.CreateTempSubdirectory("mgm-sp-").FullName;
        File.Copy(tokenizerModel ?? System.IO.Path.Combine(Parity.FixtureCatalog.Bundled("tokenizer-sp"), "tokenizer.model"),
            System.IO.Path.Combine(dir, "tokenizer.model"));
        File.WriteAllText(System.IO.Path.Combine(dir, "tokenizer_config.json"), tokenizerConfigJson);
        return new SentencePieceFolder(dir);
    }

    public void Dispose()
    {
        try { Directory.Delete(Path, recursive: true); } catch (IOException) { }
    }
}
