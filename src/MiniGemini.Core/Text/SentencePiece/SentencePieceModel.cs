namespace MiniGemini.Text.SentencePiece;

/// <summary>Piece types of sentencepiece_model.proto.</summary>
internal enum PieceType : byte
{
    Normal = 1,
    Unknown = 2,
    Control = 3,
    UserDefined = 4,
    Unused = 5,
    Byte = 6,
}

/// <summary>
/// A parsed SentencePiece <c>tokenizer.model</c> (protobuf <c>ModelProto</c>): the pieces with score and type, the
/// trainer settings that matter at run time and the normalizer flags. Lookups follow SentencePiece's
/// <c>ModelInterface</c>: NORMAL, USER_DEFINED and UNUSED pieces are "pieces", the other types "reserved".
/// </summary>
internal sealed class SentencePieceModel
{
    public const char SpaceSymbol = '\u2581'; // ▁
    const int ModelTypeBpe = 2;

    SentencePieceModel(string filePath) => FilePath = filePath;

    public string FilePath { get; }
    public string[] Pieces { get; private set; } = [];
    public float[] Scores { get; private set; } = [];
    public PieceType[] Types { get; private set; } = [];
    public int Count => Pieces.Length;

    public bool ByteFallback { get; private set; }
    public string NormalizerName { get; private set; } = "";
    public bool AddDummyPrefix { get; private set; } = true;
    public bool RemoveExtraWhitespaces { get; private set; } = true;
    public bool EscapeWhitespaces { get; private set; } = true;

    /// <summary>What a space is written as in normalized text and in pieces: ▁, or ' ' without escape_whitespaces.</summary>
    public char Whitespace => EscapeWhitespaces ? SpaceSymbol : ' ';

    public int UnkId { get; private set; } = -1;
    public int BosId { get; private set; } = -1;
    public int EosId { get; private set; } = -1;
    public int PadId { get; private set; } = -1;

    /// <summary>Id of the byte piece <c>&lt;0xXX&gt;</c> for each byte value (all -1 without byte fallback).</summary>
    public int[] ByteIds { get; } = Enumerable.Repeat(-1, 256).ToArray();

    /// <summary>NORMAL, USER_DEFINED and UNUSED pieces: what BPE may merge into.</summary>
    internal PieceLookup MergeablePieces { get; private set; } = null!;

    /// <summary>UNKNOWN, CONTROL and BYTE pieces.</summary>
    internal PieceLookup ReservedPieces { get; private set; } = null!;

    /// <summary>
    /// True when no mergeable piece has a space symbol right after a non-space character, so that no merge can
    /// cross the start of a word (true for Llama, Mistral, Yi vocabularies).
    /// </summary>
    public bool MergesStayWithinWords { get; private set; }

    /// <summary>USER_DEFINED pieces, matched whole before BPE.</summary>
    internal PrefixMatcher<string> UserDefined { get; private set; } = null!;

    public bool IsByte(int id) => Types[id] == PieceType.Byte;
    public bool IsControl(int id) => Types[id] == PieceType.Control;
    public bool IsUnknown(int id) => Types[id] == PieceType.Unknown;
    public bool IsUnused(int id) => Types[id] == PieceType.Unused;

    /// <summary>SentencePiece's PieceToId without the unknown fallback: reserved pieces first, then the others.</summary>
    public int? FindPiece(ReadOnlySpan<char> piece) =>
        ReservedPieces.TryGet(piece, out var id) || MergeablePieces.TryGet(piece, out id) ? id : null;

    /// <summary>The byte value of a byte piece (<c>&lt;0x41&gt;</c> → 0x41).</summary>
    public byte ByteOf(int id) => _byteValues[id];

    byte[] _byteValues = [];

    public static SentencePieceModel Load(string path)
    {
        byte[] bytes;
        try
        {
            bytes = File.ReadAllBytes(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new ModelLoadException($"Cannot read the SentencePiece model '{path}': {e.Message}", path, inner: e);
        }
        return Parse(bytes, path);
    }

    public static SentencePieceModel Parse(ReadOnlySpan<byte> data, string path)
    {
        var model = new SentencePieceModel(path);
        var pieces = new List<string>();
        var scores = new List<float>();
        var types = new List<PieceType>();
        var trainer = new TrainerSpec();
        var hasCharsMap = false;
        var hasDenormalizer = false;

        var reader = new ProtoReader(data, path);
        while (!reader.AtEnd)
        {
            var (field, wire) = reader.ReadKey();
            if (wire != 2) { reader.Skip(wire); continue; }
            var payload = reader.ReadLengthDelimited(out var offset);
            switch (field)
            {
                case 1: ReadPiece(new ProtoReader(payload, path, offset), pieces, scores, types); break;
                case 2: trainer = ReadTrainerSpec(new ProtoReader(payload, path, offset)); break;
                case 3: hasCharsMap = model.ReadNormalizerSpec(new ProtoReader(payload, path, offset)); break;
                case 5: hasDenormalizer = payload.Length > 0; break;
            }
        }

        if (pieces.Count == 0)
            throw new ModelLoadException($"{path}: not a valid SentencePiece model (no pieces).", path);
        if (trainer.ModelType != ModelTypeBpe)
            throw new ModelLoadException(
                $"{path}: SentencePiece model_type {ModelTypeName(trainer.ModelType)} is not supported; only BPE models (Llama, Vicuna, Mistral, Gemma, Yi) are.", path);
        if (trainer.TreatWhitespaceAsSuffix)
            throw new ModelLoadException($"{path}: treat_whitespace_as_suffix = true is not supported.", path);
        if (hasCharsMap)
            throw new ModelLoadException(
                $"{path}: normalizer '{model.NormalizerName}' with a precompiled character map is not supported; only identity normalization is.", path);
        if (hasDenormalizer)
            throw new ModelLoadException($"{path}: a denormalizer_spec is not supported.", path);

        model.Pieces = pieces.ToArray();
        model.Scores = scores.ToArray();
        model.Types = types.ToArray();
        model.ByteFallback = trainer.ByteFallback;
        model.Index(trainer);
        return model;
    }

    void Index(TrainerSpec trainer)
    {
        var mergeable = new Dictionary<string, int>(StringComparer.Ordinal);
        var reserved = new Dictionary<string, int>(StringComparer.Ordinal);
        var userDefined = new List<string>();
        _byteValues = new byte[Pieces.Length];
        for (var id = 0; id < Pieces.Length; id++)
        {
            var piece = Pieces[id];
            var type = Types[id];
            if (piece.Length == 0)
                throw new ModelLoadException($"{FilePath}: piece {id} is empty.", FilePath);
            var isMergeable = type is PieceType.Normal or PieceType.UserDefined or PieceType.Unused;
            if (!(isMergeable ? mergeable : reserved).TryAdd(piece, id))
                throw new ModelLoadException($"{FilePath}: piece '{piece}' (id {id}) is defined twice.", FilePath);
            switch (type)
            {
                case PieceType.UserDefined:
                    userDefined.Add(piece);
                    break;
                case PieceType.Unknown when UnkId >= 0:
                    throw new ModelLoadException($"{FilePath}: more than one unknown piece (ids {UnkId} and {id}).", FilePath);
                case PieceType.Unknown:
                    UnkId = id;
                    break;
                case PieceType.Byte:
                    if (!ByteFallback)
                        throw new ModelLoadException($"{FilePath}: byte piece '{piece}' (id {id}) although byte_fallback is false.", FilePath);
                    var value = ParseBytePiece(piece)
                        ?? throw new ModelLoadException($"{FilePath}: byte piece '{piece}' (id {id}) is not of the form <0xXX>.", FilePath);
                    ByteIds[value] = id;
                    _byteValues[id] = value;
                    break;
            }
        }
        if (UnkId < 0)
            throw new ModelLoadException($"{FilePath}: the model has no unknown piece.", FilePath);
        if (ByteFallback && Array.IndexOf(ByteIds, -1) >= 0)
            throw new ModelLoadException($"{FilePath}: byte_fallback is true but not all 256 byte pieces exist.", FilePath);

        MergesStayWithinWords = !mergeable.Keys.Any(p => HasSpaceAfterNonSpace(p, Whitespace));
        MergeablePieces = new PieceLookup(mergeable);
        ReservedPieces = new PieceLookup(reserved);
        UserDefined = new PrefixMatcher<string>(userDefined, piece => piece);
        BosId = FindPiece(trainer.BosPiece) ?? -1;
        EosId = FindPiece(trainer.EosPiece) ?? -1;
        PadId = FindPiece(trainer.PadPiece) ?? -1;
    }

    static bool HasSpaceAfterNonSpace(string piece, char space)
    {
        for (var i = 1; i < piece.Length; i++)
            if (piece[i] == space && piece[i - 1] != space) return true;
        return false;
    }

    static byte? ParseBytePiece(string piece) =>
        piece.Length == 6 && piece.StartsWith("<0x", StringComparison.Ordinal) && piece[5] == '>'
        && byte.TryParse(piece.AsSpan(3, 2), System.Globalization.NumberStyles.AllowHexSpecifier, null, out var b)
        && piece == $"<0x{b:X2}>"
            ? b
            : null;

    static void ReadPiece(ProtoReader reader, List<string> pieces, List<float> scores, List<PieceType> types)
    {
        string? piece = null;
        var score = 0f;
        var type = PieceType.Normal;
        while (!reader.AtEnd)
        {
            var (field, wire) = reader.ReadKey();
            switch (field, wire)
            {
                case (1, 2): piece = reader.ReadString(); break;
                case (2, 5): score = reader.ReadFloat(); break;
                case (3, 0):
                    var raw = reader.ReadInt32();
                    if (raw is < 1 or > 6) throw reader.Corrupt($"piece {pieces.Count} has unknown type {raw}");
                    type = (PieceType)raw;
                    break;
                default: reader.Skip(wire); break;
            }
        }
        pieces.Add(piece ?? throw reader.Corrupt($"piece {pieces.Count} has no text"));
        scores.Add(score);
        types.Add(type);
    }

    sealed class TrainerSpec
    {
        public int ModelType = 1; // proto default: UNIGRAM
        public bool TreatWhitespaceAsSuffix, ByteFallback;
        public string BosPiece = "<s>", EosPiece = "</s>", PadPiece = "<pad>";
    }

    static TrainerSpec ReadTrainerSpec(ProtoReader reader)
    {
        var spec = new TrainerSpec();
        while (!reader.AtEnd)
        {
            var (field, wire) = reader.ReadKey();
            switch (field, wire)
            {
                case (3, 0): spec.ModelType = reader.ReadInt32(); break;
                case (24, 0): spec.TreatWhitespaceAsSuffix = reader.ReadBool(); break;
                case (35, 0): spec.ByteFallback = reader.ReadBool(); break;
                case (46, 2): spec.BosPiece = NonEmpty(reader.ReadString(), "<s>"); break;
                case (47, 2): spec.EosPiece = NonEmpty(reader.ReadString(), "</s>"); break;
                case (48, 2): spec.PadPiece = NonEmpty(reader.ReadString(), "<pad>"); break;
                default: reader.Skip(wire); break;
            }
        }
        return spec;
    }

    static string NonEmpty(string value, string fallback) => value.Length == 0 ? fallback : value;

    /// <summary>Reads the normalizer flags; returns whether a non-empty precompiled character map is present.</summary>
    bool ReadNormalizerSpec(ProtoReader reader)
    {
        var hasCharsMap = false;
        while (!reader.AtEnd)
        {
            var (field, wire) = reader.ReadKey();
            switch (field, wire)
            {
                case (1, 2): NormalizerName = reader.ReadString(); break;
                case (2, 2): hasCharsMap = reader.ReadLengthDelimited(out _).Length > 0; break;
                case (3, 0): AddDummyPrefix = reader.ReadBool(); break;
                case (4, 0): RemoveExtraWhitespaces = reader.ReadBool(); break;
                case (5, 0): EscapeWhitespaces = reader.ReadBool(); break;
                default: reader.Skip(wire); break;
            }
        }
        return hasCharsMap;
    }

    static string ModelTypeName(int type) => type switch
    {
        1 => "UNIGRAM",
        2 => "BPE",
        3 => "WORD",
        4 => "CHAR",
        _ => type.ToString(System.Globalization.CultureInfo.InvariantCulture),
    };
}
