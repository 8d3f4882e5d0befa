using System.Text;
using System.Text.Json;
using MiniGemini.Text;
using MiniGemini.Text.ByteLevel;
using MiniGemini.Text.SentencePiece;

namespace MiniGemini;

/// <summary>
/// The tokenizer of a Mini-Gemini language model, loaded from its folder and exact to the Python reference.
/// <list type="bullet">
/// <item>A SentencePiece <c>tokenizer.model</c> (Vicuna, Mistral/Mixtral, Gemma, Yi) is encoded by this library's own
/// BPE, id for id what SentencePiece produces, with Hugging Face's handling of special tokens around it.</item>
/// <item>A byte-level BPE (Llama-3: <c>tokenizer.json</c>, or a tiktoken file as <c>tokenizer.model</c> or
/// <c>original/tokenizer.model</c>) is encoded by Microsoft.ML.Tokenizers.</item>
/// </list>
/// BOS/EOS/PAD and added special tokens come from <c>tokenizer_config.json</c>, <c>special_tokens_map.json</c> and
/// <c>tokenizer.json</c> when present, otherwise from the model itself; <c>generation_config.json</c> and
/// <c>config.json</c> add end-of-sequence ids. Instances are immutable and thread-safe.
/// </summary>
public sealed class MiniGeminiTokenizer
{
    readonly ITokenizerModel _model;
    readonly AddedTokenSplitter _splitter;
    readonly Dictionary<int, AddedToken> _addedById;
    readonly Dictionary<string, AddedToken> _addedByContent;
    readonly bool _cleanUpSpaces;
    readonly Lazy<int> _maxCharsPerToken;

    MiniGeminiTokenizer(ITokenizerModel model, IReadOnlyList<AddedToken> addedTokens, bool cleanUpSpaces)
    {
        _model = model;
        _cleanUpSpaces = cleanUpSpaces;
        _addedByContent = new Dictionary<string, AddedToken>(StringComparer.Ordinal);
        _addedById = new Dictionary<int, AddedToken>();
        foreach (var token in addedTokens)
        {
            if (!_addedByContent.TryAdd(token.Content, token)) continue; // the first declaration wins
            _addedById.TryAdd(token.Id, token);
        }
        _splitter = new AddedTokenSplitter(_addedByContent.Values);
        SpecialTokens = _addedByContent.Values.Where(t => t.Special).ToDictionary(t => t.Content, t => t.Id, StringComparer.Ordinal);
        VocabSize = Math.Max(model.Count, _addedById.Count == 0 ? 0 : _addedById.Keys.Max() + 1);
        // A piece's spelling has at least as many characters as the text it encodes (▁ is one space, a byte-level
        // token spells one character per byte).
        _maxCharsPerToken = new(() => Math.Max(1, Enumerable.Range(0, VocabSize).Max(id => IdToToken(id)?.Length ?? 0)));
    }

    /// <summary>Id of the beginning-of-sequence token, or null when the tokenizer has none.</summary>
    public int? BosId { get; private init; }

    /// <summary>Id of the tokenizer's end-of-sequence token (what the reference passes to <c>generate</c>), or null.</summary>
    public int? EosId { get; private init; }

    /// <summary>
    /// Every id that ends generation: <see cref="EosId"/> plus <c>eos_token_id</c> of generation_config.json and
    /// config.json (a number or a list; e.g. Llama-3 lists both <c>&lt;|end_of_text|&gt;</c> and <c>&lt;|eot_id|&gt;</c>).
    /// </summary>
    public IReadOnlyList<int> EosIds { get; private init; } = [];

    /// <summary>Id of the padding token, or null when none is configured.</summary>
    public int? PadId { get; private init; }

    /// <summary>Id of the unknown token, or null (byte-level vocabularies have none).</summary>
    public int? UnkId { get; private init; }

    /// <summary>Whether the tokenizer adds BOS by default (<c>add_bos_token</c> / the tokenizer.json post-processor).</summary>
    public bool AddsBosByDefault { get; private init; }

    /// <summary>Number of ids: the model's vocabulary plus added tokens beyond it.</summary>
    public int VocabSize { get; }

    /// <summary>Special tokens (content → id): skipped by <see cref="Decode"/> when asked, matched whole in a prompt's scaffold (and in text only when asked).</summary>
    public IReadOnlyDictionary<string, int> SpecialTokens { get; }

    /// <summary>
    /// The most characters of text one id can stand for (the longest piece or added token), so that a text of n
    /// characters has at least n / MaxCharsPerToken tokens: a bound that refuses an oversized prompt before encoding it.
    /// </summary>
    internal int MaxCharsPerToken => _maxCharsPerToken.Value;

    /// <summary>True for a SentencePiece model, false for a byte-level (tiktoken-style) one.</summary>
    public bool IsSentencePiece => _model is SentencePieceBpe;

    /// <summary>
    /// Loads the tokenizer of a model folder. The implementation is chosen from the files present:
    /// a SentencePiece <c>tokenizer.model</c>, else a byte-level <c>tokenizer.json</c>, else a tiktoken file
    /// (<c>tokenizer.model</c> in tiktoken format, or <c>original/tokenizer.model</c>).
    /// </summary>
    /// <exception cref="ModelLoadException">No tokenizer file, or a file is missing, corrupt or unsupported (the message names it).</exception>
    public static MiniGeminiTokenizer FromFolder(string modelFolder)
    {
        ArgumentException.ThrowIfNullOrEmpty(modelFolder);
        var folder = TokenizerFolder.Open(modelFolder);
        var spFile = folder.FileOf(TokenizerFolder.SentencePieceFile);
        var jsonFile = folder.FileOf(TokenizerFolder.TokenizerJsonFile);
        var tiktokenFallback = folder.FileOf(TokenizerFolder.TiktokenFallbackFile);

        if (File.Exists(spFile) && !IsTiktoken(spFile)) return CreateSentencePiece(folder, spFile);
        var tiktokenFile = File.Exists(spFile) ? spFile : null;
        if (tiktokenFile is null && !File.Exists(jsonFile) && File.Exists(tiktokenFallback)) tiktokenFile = tiktokenFallback;
        if (tiktokenFile is null && !File.Exists(jsonFile))
            throw new ModelLoadException(
                $"No tokenizer in '{modelFolder}': expected {TokenizerFolder.SentencePieceFile}, {TokenizerFolder.TokenizerJsonFile} or {TokenizerFolder.TiktokenFallbackFile}.",
                modelFolder);
        return CreateByteLevel(folder, tiktokenFile);
    }

    /// <summary>
    /// Encodes text to ids, literally by default: special tokens written in the text (<c>&lt;/s&gt;</c>,
    /// <c>&lt;|eot_id|&gt;</c>) are encoded as the ordinary pieces of their characters, as SentencePiece does and as
    /// Hugging Face's <c>split_special_tokens=True</c>. Non-special added tokens are still matched.
    /// </summary>
    /// <param name="text">The text; may be empty.</param>
    /// <param name="addBos">Prepend <see cref="BosId"/> (ignored when the tokenizer has no BOS).</param>
    /// <param name="parseSpecialTokens">
    /// Match special tokens written in the text to their single ids, as Hugging Face's <c>tokenizer(text)</c> does: for
    /// a raw prompt you rendered yourself, never for text a user typed (use <see cref="Encode(IReadOnlyList{PromptSegment}, bool)"/>).
    /// </param>
    public int[] Encode(string text, bool addBos, bool parseSpecialTokens = false)
    {
        ArgumentNullException.ThrowIfNull(text);
        return Encode([new PromptSegment(text, IsContent: !parseSpecialTokens)], addBos);
    }

    /// <summary>Encodes text with the tokenizer's defaults (BOS when <see cref="AddsBosByDefault"/>), literally (see <see cref="Encode(string, bool, bool)"/>).</summary>
    public int[] Encode(string text) => Encode(text, AddsBosByDefault);

    /// <summary>
    /// Encodes a structured prompt: special tokens are matched in scaffold only, content is encoded literally. The
    /// text is encoded as one string otherwise, so a prompt whose content holds no control strings gets the ids of
    /// Hugging Face's <c>tokenizer(prompt)</c>.
    /// </summary>
    /// <param name="segments">The prompt's pieces in order.</param>
    /// <param name="addBos">Prepend <see cref="BosId"/> (ignored when the tokenizer has no BOS).</param>
    public int[] Encode(IReadOnlyList<PromptSegment> segments, bool addBos)
    {
        ArgumentNullException.ThrowIfNull(segments);
        var text = PromptSegment.Join(segments);
        var content = new bool[text.Length];
        for (int i = 0, at = 0; i < segments.Count; at += segments[i].Text.Length, i++)
            if (segments[i].IsContent) Array.Fill(content, true, at, segments[i].Text.Length);
        bool Matches(AddedToken token, int start) => !token.Special || Array.IndexOf(content, true, start, token.Content.Length) < 0;

        var ids = new List<int>(text.Length / 3 + 2);
        if (addBos && BosId is { } bos) ids.Add(bos);
        var parts = _splitter.Split(text, Matches);
        for (var i = 0; i < parts.Count; i++)
        {
            if (parts[i] is AddedToken token) ids.Add(token.Id);
            else _model.Encode((string)parts[i], isFirstSegment: i == 0, ids);
        }
        return ids.ToArray();
    }

    /// <summary>Decodes ids to text.</summary>
    /// <param name="ids">Token ids (not the −200 image placeholder).</param>
    /// <param name="skipSpecialTokens">Drop special tokens (BOS, EOS, chat markers); otherwise they appear as their text.</param>
    /// <exception cref="ArgumentOutOfRangeException">An id is not in the vocabulary.</exception>
    public string Decode(IEnumerable<int> ids, bool skipSpecialTokens = true)
    {
        ArgumentNullException.ThrowIfNull(ids);
        var decoder = _model.CreateDecoder();
        var text = new StringBuilder();
        foreach (var id in ids) DecodeInto(decoder, id, skipSpecialTokens, text);
        decoder.Flush(text);
        return _cleanUpSpaces ? new SpaceCleanup().Process(text.ToString(), final: true) : text.ToString();
    }

    /// <summary>A decoder for one generated sequence that returns text deltas as ids arrive.</summary>
    public StreamingTextDecoder CreateStreamingDecoder(bool skipSpecialTokens = true) =>
        new(this, _model.CreateDecoder(), skipSpecialTokens, _cleanUpSpaces);

    /// <summary>The id of a token given as its vocabulary string (SentencePiece piece such as <c>▁the</c>, byte-level token such as <c>Ġthe</c>, or a special token), or null.</summary>
    public int? TokenToId(string token)
    {
        ArgumentNullException.ThrowIfNull(token);
        return _addedByContent.TryGetValue(token, out var added) ? added.Id : _model.TokenToId(token);
    }

    /// <summary>The vocabulary string of an id, or null when the id is not in the vocabulary.</summary>
    public string? IdToToken(int id) => _addedById.TryGetValue(id, out var added) ? added.Content : _model.IdToToken(id);

    internal void DecodeInto(IIncrementalDecoder decoder, int id, bool skipSpecialTokens, StringBuilder output)
    {
        if (_addedById.TryGetValue(id, out var added))
        {
            if (!(added.Special && skipSpecialTokens)) decoder.AppendLiteral(added.Content, output);
        }
        else if (_model.IdToToken(id) is not null)
        {
            decoder.Append(id, output);
        }
        else
        {
            throw new ArgumentOutOfRangeException(nameof(id), id, $"Token id {id} is not in the vocabulary (size {VocabSize}).");
        }
    }

    static bool IsTiktoken(string file)
    {
        try
        {
            using var stream = File.OpenRead(file);
            Span<byte> head = stackalloc byte[256];
            return ByteLevelBpe.IsTiktokenFile(head[..stream.ReadAtLeast(head, head.Length, throwOnEndOfStream: false)]);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new ModelLoadException($"Cannot read '{file}': {e.Message}", file, inner: e);
        }
    }

    static MiniGeminiTokenizer CreateSentencePiece(TokenizerFolder folder, string spFile)
    {
        var sp = SentencePieceModel.Load(spFile);
        var model = new SentencePieceBpe(sp, legacy: folder.ConfigBool("legacy") ?? true);

        // Declared added tokens: tokenizer_config.json's added_tokens_decoder, else tokenizer.json's added_tokens.
        var hasDecoderTable = folder.TokenizerConfig is { } tc && tc.TryGetProperty("added_tokens_decoder", out _);
        var tokenizerJson = hasDecoderTable ? null : folder.LoadTokenizerJson();
        var added = folder.DeclaredAddedTokens(tokenizerJson);
        // Control and unknown pieces are special tokens of every SentencePiece tokenizer (HF registers <s>, </s>, <unk>).
        for (var id = 0; id < sp.Count; id++)
            if (sp.IsControl(id) || sp.IsUnknown(id)) added.Add(new AddedToken(sp.Pieces[id], id, Special: true));

        var defaults = new Dictionary<string, int?>
        {
            ["bos_token"] = Valid(sp.BosId), ["eos_token"] = Valid(sp.EosId), ["unk_token"] = sp.UnkId, ["pad_token"] = Valid(sp.PadId),
        };
        return Build(folder, model, added, defaults, tokenizerJson, addsBosWithoutConfig: sp.BosId >= 0);
    }

    static MiniGeminiTokenizer CreateByteLevel(TokenizerFolder folder, string? tiktokenFile)
    {
        var jsonFile = folder.FileOf(TokenizerFolder.TokenizerJsonFile);
        var tokenizerJson = folder.LoadTokenizerJson();
        var added = folder.DeclaredAddedTokens(tokenizerJson);
        if (tiktokenFile is not null && added.Count == 0)
            throw new ModelLoadException(
                $"{tiktokenFile}: a tiktoken file does not name its special tokens; tokenizer_config.json (added_tokens_decoder) or tokenizer.json (added_tokens) must be present in '{folder.Path}'.",
                tiktokenFile);
        // The BPE never sees a special token: the added-token splitter takes out those a prompt's scaffold holds, and
        // whatever else is left is text, encoded literally.
        var specials = new Dictionary<string, int>(StringComparer.Ordinal);

        ByteLevelBpe model;
        if (tiktokenFile is not null)
        {
            var pattern = (tokenizerJson is { } tj ? ByteLevelBpe.TryFindPattern(tj, jsonFile) : null) ?? ByteLevelBpe.Llama3Pattern;
            model = ByteLevelBpe.FromTiktokenFile(tiktokenFile, specials, pattern);
        }
        else
        {
            model = ByteLevelBpe.FromTokenizerJson(jsonFile, tokenizerJson!.Value, specials);
        }
        var defaults = new Dictionary<string, int?> { ["bos_token"] = null, ["eos_token"] = null, ["unk_token"] = null, ["pad_token"] = null };
        return Build(folder, model, added, defaults, tokenizerJson, addsBosWithoutConfig: false);
    }

    static int? Valid(int id) => id >= 0 ? id : null;

    static MiniGeminiTokenizer Build(
        TokenizerFolder folder, ITokenizerModel model, List<AddedToken> added, Dictionary<string, int?> defaults,
        JsonElement? tokenizerJson, bool addsBosWithoutConfig)
    {
        int CheckedConfigId(int id, string key) =>
            IdContent(model, added, id) is not null ? id
                : throw new ModelLoadException(
                    $"{folder.Path}: {key} {id} (generation_config.json / config.json) is not in the vocabulary.", folder.Path);

        int Resolve(string content, string key, string file)
        {
            foreach (var token in added)
                if (token.Content == content) return token.Id;
            return model.TokenToId(content)
                ?? throw new ModelLoadException($"{file}: {key} \"{content}\" is not in the vocabulary.", file);
        }

        // Named special tokens: the tokenizer config files decide (null there means "none"); otherwise the model's
        // own ids, then the ids of generation_config.json / config.json.
        var named = new Dictionary<string, int?>();
        foreach (var (key, modelDefault) in defaults)
        {
            var (file, content) = folder.SpecialTokenSetting(key);
            named[key] = file is not null
                ? content is null ? null : Resolve(content, key, file)
                : modelDefault ?? folder.ConfigIds(key + "_id").Select(id => CheckedConfigId(id, key + "_id")).Cast<int?>().FirstOrDefault();
        }
        var extra = new List<AddedToken>();
        foreach (var id in named.Values)
            if (id is { } i) extra.Add(new AddedToken(IdContent(model, added, i)!, i, Special: true));
        foreach (var (file, content) in folder.AdditionalSpecialTokens())
            extra.Add(new AddedToken(content, Resolve(content, "additional_special_tokens", file), Special: true));
        // A named token that is also declared keeps the declaration's strip flags but is always special.
        var namedIds = extra.Select(t => t.Id).ToHashSet();
        var all = added.Select(t => namedIds.Contains(t.Id) ? t with { Special = true } : t).Concat(extra).ToList();

        var (bos, eos) = (named["bos_token"], named["eos_token"]);
        var eosIds = new List<int>();
        if (eos is { } e) eosIds.Add(e);
        eosIds.AddRange(folder.ConfigIds("eos_token_id").Select(id => CheckedConfigId(id, "eos_token_id")).Where(id => !eosIds.Contains(id)));

        var bosContent = bos is { } b ? IdContent(model, added, b) : null;
        var addsBos = folder.ConfigBool("add_bos_token") ?? PostProcessorAddsBos(tokenizerJson, bosContent) ?? addsBosWithoutConfig;

        return new MiniGeminiTokenizer(model, all, folder.ConfigBool("clean_up_tokenization_spaces") ?? false)
        {
            BosId = bos,
            EosId = eos,
            EosIds = eosIds,
            PadId = named["pad_token"],
            UnkId = named["unk_token"],
            AddsBosByDefault = addsBos && bos is not null,
        };
    }

    static string? IdContent(ITokenizerModel model, List<AddedToken> added, int id) =>
        added.FirstOrDefault(t => t.Id == id)?.Content ?? model.IdToToken(id);

    /// <summary>Whether tokenizer.json's post-processor starts a single sequence with the BOS token (null: no post-processor).</summary>
    static bool? PostProcessorAddsBos(JsonElement? tokenizerJson, string? bosContent)
    {
        if (tokenizerJson is not { } tj || !tj.TryGetProperty("post_processor", out var post) || post.ValueKind != JsonValueKind.Object)
            return null;
        var processors = post.TryGetProperty("processors", out var list) && list.ValueKind == JsonValueKind.Array
            ? list.EnumerateArray().ToArray()
            : [post];
        foreach (var p in processors)
        {
            if (!p.TryGetProperty("single", out var single) || single.ValueKind != JsonValueKind.Array || single.GetArrayLength() == 0) continue;
            var first = single[0];
            return bosContent is not null && first.TryGetProperty("SpecialToken", out var st)
                && st.TryGetProperty("id", out var id) && id.GetString() == bosContent;
        }
        return false;
    }
}
