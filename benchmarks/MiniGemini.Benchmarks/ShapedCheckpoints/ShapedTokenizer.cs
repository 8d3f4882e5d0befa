using System.Text.Json.Nodes;
using MiniGemini.Text.SentencePiece;

namespace MiniGemini.Benchmarks.ShapedCheckpoints;

/// <summary>
/// A SentencePiece BPE <c>tokenizer.model</c> with a model's real vocabulary size and the real ids of its special
/// pieces, the other pieces synthetic (distinct letter strings, with and without the ▁ word marker), plus the
/// tokenizer_config.json that names the special tokens.
/// <list type="bullet">
/// <item>Llama / Vicuna (32000): &lt;unk&gt; 0, &lt;s&gt; 1, &lt;/s&gt; 2, byte pieces 3-258, dummy prefix on.</item>
/// <item>Gemma (256000): &lt;pad&gt; 0, &lt;eos&gt; 1, &lt;bos&gt; 2, &lt;unk&gt; 3, &lt;mask&gt; 4, &lt;2mass&gt; 5,
/// [@BOS@] 6, &lt;unused0-98&gt; 7-105, &lt;start_of_turn&gt; 106, &lt;end_of_turn&gt; 107 (user-defined pieces, matched
/// whole), "\n" 108, then byte pieces; no dummy prefix, as Gemma's normalizer has it.</item>
/// </list>
/// </summary>
public static class ShapedTokenizer
{
    /// <summary>The tokenizer.model file name.</summary>
    public const string ModelFile = "tokenizer.model";

    /// <summary>Writes tokenizer.model and tokenizer_config.json for <paramref name="model"/> into <paramref name="folder"/>.</summary>
    public static IReadOnlyList<WrittenFile> Write(string folder, ShapedModel model)
    {
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var path = Path.Combine(folder, ModelFile);
        File.WriteAllBytes(path, Serialize(model.Vocabulary, model.Decoder.VocabSize));
        var spm = new WrittenFile(path, new FileInfo(path).Length, 0, clock.Elapsed.TotalSeconds);
        var config = ConfigFiles.Write(Path.Combine(folder, "tokenizer_config.json"), TokenizerConfig(model));
        return [spm, config];
    }

    /// <summary>The tokenizer.model bytes for a vocabulary layout and size.</summary>
    public static byte[] Serialize(VocabularyLayout layout, int vocabSize) => layout switch
    {
        VocabularyLayout.Llama => SentencePieceModelWriter.Serialize(
            SentencePieceModelWriter.LlamaLayout(SyntheticPieces(vocabSize - SentencePieceModelWriter.FirstNormalId, new HashSet<string>()))),
        VocabularyLayout.Gemma => SerializeGemma(vocabSize),
        _ => throw new ArgumentOutOfRangeException(nameof(layout), layout, null),
    };

    /// <summary>tokenizer_config.json as MGM saves it (pad = unk for Vicuna, Gemma's own pad; right padding).</summary>
    public static JsonObject TokenizerConfig(ShapedModel model)
    {
        var json = new JsonObject { ["add_bos_token"] = true, ["add_eos_token"] = false };
        if (model.Vocabulary == VocabularyLayout.Gemma)
        {
            json["additional_special_tokens"] = new JsonArray("<start_of_turn>", "<end_of_turn>");
            json["bos_token"] = "<bos>";
            json["eos_token"] = "<eos>";
            json["pad_token"] = "<pad>";
            json["unk_token"] = "<unk>";
            json["tokenizer_class"] = "GemmaTokenizer";
        }
        else
        {
            json["bos_token"] = "<s>";
            json["eos_token"] = "</s>";
            json["pad_token"] = "<unk>";
            json["unk_token"] = "<unk>";
            json["tokenizer_class"] = "LlamaTokenizer";
        }
        json["clean_up_tokenization_spaces"] = false;
        json["model_max_length"] = model.TokenizerModelMaxLength;
        json["padding_side"] = "right";
        return ConfigFiles.Sorted(json.Select(p => new KeyValuePair<string, JsonNode?>(p.Key, p.Value?.DeepClone())));
    }

    /// <summary>
    /// <paramref name="count"/> distinct pieces, shortest first: "▁", the printable ASCII characters, then letter strings of
    /// growing length, each also as a word start (▁abc), skipping <paramref name="reserved"/>.
    /// </summary>
    public static IEnumerable<string> SyntheticPieces(int count, IReadOnlySet<string> reserved)
    {
        int produced = 0;
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var piece in Candidates())
        {
            if (produced == count) yield break;
            if (reserved.Contains(piece) || !seen.Add(piece)) continue;
            produced++;
            yield return piece;
        }
        if (produced < count) throw new InvalidOperationException($"Only {produced} synthetic pieces for {count} asked.");
    }

    static IEnumerable<string> Candidates()
    {
        const char Space = '\u2581';
        yield return Space.ToString();
        for (char c = '!'; c <= '~'; c++) yield return c.ToString();
        for (char c = '!'; c <= '~'; c++) yield return Space + c.ToString();
        var letters = Enumerable.Range('a', 26).Select(c => (char)c).ToArray();
        IEnumerable<string> words = letters.Select(c => c.ToString());
        for (int length = 2; length <= 4; length++) // ~950,000 candidates: enough for Gemma's 256000
        {
            words = words.SelectMany(w => letters.Select(c => w + c)).ToList();
            foreach (var w in words)
            {
                yield return Space + w;
                yield return w;
            }
        }
    }

    const int GemmaUnusedPieces = 99;

    static byte[] SerializeGemma(int vocabSize)
    {
        var pieces = new List<(string Text, PieceType Type)>
        {
            ("<pad>", PieceType.Control), ("<eos>", PieceType.Control), ("<bos>", PieceType.Control), ("<unk>", PieceType.Unknown),
            ("<mask>", PieceType.UserDefined), ("<2mass>", PieceType.UserDefined), ("[@BOS@]", PieceType.UserDefined),
        };
        for (int i = 0; i < GemmaUnusedPieces; i++) pieces.Add(($"<unused{i}>", PieceType.UserDefined));
        pieces.Add(("<start_of_turn>", PieceType.UserDefined));
        pieces.Add(("<end_of_turn>", PieceType.UserDefined));
        pieces.Add(("\n", PieceType.UserDefined));
        for (int b = 0; b < 256; b++) pieces.Add(($"<0x{b:X2}>", PieceType.Byte));
        var reserved = pieces.Select(p => p.Text).ToHashSet(StringComparer.Ordinal);
        pieces.AddRange(SyntheticPieces(vocabSize - pieces.Count, reserved).Select(p => (p, PieceType.Normal)));

        var model = new ProtoWriter();
        int rank = 0;
        foreach (var (text, type) in pieces)
        {
            var entry = new ProtoWriter();
            entry.WriteString(1, text);
            entry.WriteFloat(2, type == PieceType.Normal ? -rank++ : 0f);
            if (type != PieceType.Normal) entry.WriteInt32(3, (int)type);
            model.WriteMessage(1, entry);
        }

        var trainer = new ProtoWriter();
        trainer.WriteInt32(3, 2);            // model_type BPE
        trainer.WriteInt32(4, vocabSize);    // vocab_size
        trainer.WriteBool(25, true);         // split_digits
        trainer.WriteBool(35, true);         // byte_fallback
        trainer.WriteInt32(40, 3);           // unk_id
        trainer.WriteInt32(41, 2);           // bos_id
        trainer.WriteInt32(42, 1);           // eos_id
        trainer.WriteInt32(43, 0);           // pad_id
        trainer.WriteString(45, "<unk>");    // unk_piece
        trainer.WriteString(46, "<bos>");    // bos_piece
        trainer.WriteString(47, "<eos>");    // eos_piece
        trainer.WriteString(48, "<pad>");    // pad_piece
        model.WriteMessage(2, trainer);

        var normalizer = new ProtoWriter();
        normalizer.WriteString(1, "identity");
        normalizer.WriteBytes(2, []);
        normalizer.WriteBool(3, false);      // add_dummy_prefix: Gemma has none
        normalizer.WriteBool(4, false);      // remove_extra_whitespaces
        normalizer.WriteBool(5, true);       // escape_whitespaces
        model.WriteMessage(3, normalizer);
        return model.ToArray();
    }
}
