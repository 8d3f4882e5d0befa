namespace MiniGemini.Text.SentencePiece;

/// <summary>
/// Writes SentencePiece <c>tokenizer.model</c> files (protobuf <c>ModelProto</c> of <c>sentencepiece_model.proto</c>)
/// for BPE vocabularies, laid out as Llama's: id 0 <c>&lt;unk&gt;</c> (UNKNOWN), 1 <c>&lt;s&gt;</c> and 2
/// <c>&lt;/s&gt;</c> (CONTROL), then the 256 byte-fallback pieces <c>&lt;0x00&gt;</c>…<c>&lt;0xFF&gt;</c> (BYTE), then
/// the NORMAL pieces; no pad piece (pad_id −1); identity normalizer with a dummy prefix, spaces kept as they are
/// and escaped to ▁. <see cref="SentencePieceModel"/> and Microsoft.ML.Tokenizers' <c>LlamaTokenizer</c> both
/// read the result, and a model folder holding only this file loads with <see cref="MiniGeminiTokenizer.FromFolder"/>.
/// </summary>
internal static class SentencePieceModelWriter
{
    /// <summary>One entry of <c>ModelProto.pieces</c>.</summary>
    public readonly record struct Piece(string Text, float Score, PieceType Type);

    public const string UnknownPiece = "<unk>";
    public const string BosPiece = "<s>";
    public const string EosPiece = "</s>";

    /// <summary>Id of the first byte piece <c>&lt;0x00&gt;</c> in the Llama layout.</summary>
    public const int FirstByteId = 3;

    /// <summary>Id of the first NORMAL piece in the Llama layout.</summary>
    public const int FirstNormalId = FirstByteId + 256;

    const int ModelTypeBpe = 2;

    /// <summary>
    /// Builds a word-level vocabulary from <paramref name="corpusTexts"/> (see <see cref="WordLevelVocabulary"/>:
    /// each word one piece, punctuation split off, every character of the texts a piece, bytes for anything
    /// else) and writes it to <paramref name="path"/> as a Llama-style BPE <c>tokenizer.model</c>.
    /// </summary>
    /// <exception cref="ArgumentException">The corpus holds no text.</exception>
    public static void WriteWordLevel(string path, IEnumerable<string> corpusTexts)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        File.WriteAllBytes(path, SerializeWordLevel(corpusTexts));
    }

    /// <summary>The bytes <see cref="WriteWordLevel"/> writes.</summary>
    public static byte[] SerializeWordLevel(IEnumerable<string> corpusTexts) =>
        Serialize(LlamaLayout(WordLevelVocabulary.Build(corpusTexts).Pieces));

    /// <summary>
    /// The Llama layout around <paramref name="normalPieces"/>, given best first: special and byte pieces score 0,
    /// the i-th normal piece scores −i, so that BPE prefers merges into earlier pieces.
    /// </summary>
    public static List<Piece> LlamaLayout(IEnumerable<string> normalPieces)
    {
        ArgumentNullException.ThrowIfNull(normalPieces);
        var pieces = new List<Piece>
        {
            new(UnknownPiece, 0, PieceType.Unknown),
            new(BosPiece, 0, PieceType.Control),
            new(EosPiece, 0, PieceType.Control),
        };
        for (var b = 0; b < 256; b++) pieces.Add(new($"<0x{b:X2}>", 0, PieceType.Byte));
        var rank = 0;
        foreach (var piece in normalPieces) pieces.Add(new(piece, -rank++, PieceType.Normal));
        return pieces;
    }

    /// <summary>
    /// Serializes a BPE <c>ModelProto</c>. The trainer spec names the ids of <c>&lt;unk&gt;</c>, <c>&lt;s&gt;</c> and
    /// <c>&lt;/s&gt;</c> (−1 when absent) and turns byte fallback on when the pieces hold byte pieces.
    /// </summary>
    /// <exception cref="ArgumentException">
    /// A piece is empty or defined twice, there is not exactly one UNKNOWN piece, a BYTE piece is not
    /// <c>&lt;0xXX&gt;</c>, or some but not all 256 byte pieces are present.
    /// </exception>
    public static byte[] Serialize(IReadOnlyList<Piece> pieces)
    {
        ArgumentNullException.ThrowIfNull(pieces);
        Validate(pieces);

        var model = new ProtoWriter();
        foreach (var (text, score, type) in pieces)
        {
            var entry = new ProtoWriter();
            entry.WriteString(1, text);
            entry.WriteFloat(2, score);
            if (type != PieceType.Normal) entry.WriteInt32(3, (int)type); // NORMAL is the default, left out as SentencePiece does
            model.WriteMessage(1, entry);
        }

        // The first piece of the type (with that text, when given); -1 when there is none.
        int IdOf(string? piece, PieceType type)
        {
            for (var id = 0; id < pieces.Count; id++)
                if (pieces[id].Type == type && (piece is null || pieces[id].Text == piece)) return id;
            return -1;
        }

        var trainer = new ProtoWriter();
        trainer.WriteInt32(3, ModelTypeBpe);            // model_type
        trainer.WriteInt32(4, pieces.Count);            // vocab_size
        trainer.WriteFloat(10, 1f);                     // character_coverage
        trainer.WriteBool(24, false);                   // treat_whitespace_as_suffix
        trainer.WriteBool(35, pieces.Any(p => p.Type == PieceType.Byte)); // byte_fallback
        trainer.WriteInt32(40, IdOf(null, PieceType.Unknown));     // unk_id
        trainer.WriteInt32(41, IdOf(BosPiece, PieceType.Control));  // bos_id
        trainer.WriteInt32(42, IdOf(EosPiece, PieceType.Control));  // eos_id
        trainer.WriteInt32(43, -1);                                 // pad_id
        model.WriteMessage(2, trainer);

        var normalizer = new ProtoWriter();
        normalizer.WriteString(1, "identity");          // name
        normalizer.WriteBytes(2, []);                   // precompiled_charsmap: none
        normalizer.WriteBool(3, true);                  // add_dummy_prefix
        normalizer.WriteBool(4, false);                 // remove_extra_whitespaces
        normalizer.WriteBool(5, true);                  // escape_whitespaces
        model.WriteMessage(3, normalizer);

        return model.ToArray();
    }

    static void Validate(IReadOnlyList<Piece> pieces)
    {
        var seen = new HashSet<string>(StringComparer.Ordinal);
        var unknown = 0;
        var bytes = new bool[256];
        var byteCount = 0;
        for (var id = 0; id < pieces.Count; id++)
        {
            var (text, _, type) = pieces[id];
            if (string.IsNullOrEmpty(text)) throw new ArgumentException($"Piece {id} is empty.", nameof(pieces));
            if (!seen.Add(text)) throw new ArgumentException($"Piece '{text}' (id {id}) is defined twice.", nameof(pieces));
            if (!Enum.IsDefined(type)) throw new ArgumentException($"Piece '{text}' (id {id}) has no valid type ({(int)type}).", nameof(pieces));
            if (type == PieceType.Unknown) unknown++;
            if (type != PieceType.Byte) continue;
            if (ByteValue(text) is not { } value)
                throw new ArgumentException($"Byte piece '{text}' (id {id}) is not of the form <0xXX>.", nameof(pieces));
            if (!bytes[value]) byteCount++;
            bytes[value] = true;
        }
        if (unknown != 1)
            throw new ArgumentException($"A SentencePiece model needs exactly one UNKNOWN piece; these pieces have {unknown}.", nameof(pieces));
        if (byteCount is not (0 or 256))
            throw new ArgumentException($"Byte fallback needs all 256 byte pieces; these pieces have {byteCount}.", nameof(pieces));
    }

    static int? ByteValue(string piece) =>
        piece.Length == 6 && piece.StartsWith("<0x", StringComparison.Ordinal) && piece[5] == '>'
        && byte.TryParse(piece.AsSpan(3, 2), System.Globalization.NumberStyles.AllowHexSpecifier, null, out var b)
        && piece == $"<0x{b:X2}>"
            ? b
            : null;
}
