using System.Text;

namespace MiniGemini.Tests.Text;

/// <summary>Writes small SentencePiece ModelProto files by hand (protobuf wire format), for algorithm and error tests.</summary>
internal static class SentencePieceModelWriter
{
    public const int Normal = 1, Unknown = 2, Control = 3, UserDefined = 4, Unused = 5, BytePiece = 6;

    public static byte[] Build(
        IEnumerable<(string Piece, float Score, int Type)> pieces, int modelType = 2, bool byteFallback = false,
        bool addDummyPrefix = true, bool removeExtraWhitespaces = false, string normalizerName = "identity", byte[]? charsMap = null)
    {
        var model = new MemoryStream();
        foreach (var (piece, score, type) in pieces)
        {
            var p = new MemoryStream();
            Bytes(p, 1, Encoding.UTF8.GetBytes(piece));
            Key(p, 2, 5);
            p.Write(BitConverter.GetBytes(score));
            Varint(p, 3, (ulong)type);
            Bytes(model, 1, p.ToArray());
        }
        var trainer = new MemoryStream();
        Varint(trainer, 3, (ulong)modelType);
        Varint(trainer, 35, byteFallback ? 1UL : 0UL);
        Bytes(model, 2, trainer.ToArray());
        var normalizer = new MemoryStream();
        Bytes(normalizer, 1, Encoding.UTF8.GetBytes(normalizerName));
        if (charsMap is not null) Bytes(normalizer, 2, charsMap);
        Varint(normalizer, 3, addDummyPrefix ? 1UL : 0UL);
        Varint(normalizer, 4, removeExtraWhitespaces ? 1UL : 0UL);
        Bytes(model, 3, normalizer.ToArray());
        return model.ToArray();
    }

    /// <summary>&lt;unk&gt;, &lt;s&gt;, &lt;/s&gt; followed by the given pieces.</summary>
    public static byte[] WithSpecials(params (string Piece, float Score, int Type)[] pieces) =>
        Build([("<unk>", 0, Unknown), ("<s>", 0, Control), ("</s>", 0, Control), .. pieces]);

    static void Key(Stream s, int field, int wire) => RawVarint(s, (ulong)((field << 3) | wire));

    static void Varint(Stream s, int field, ulong value)
    {
        Key(s, field, 0);
        RawVarint(s, value);
    }

    static void Bytes(Stream s, int field, byte[] bytes)
    {
        Key(s, field, 2);
        RawVarint(s, (ulong)bytes.Length);
        s.Write(bytes);
    }

    static void RawVarint(Stream s, ulong value)
    {
        while (value >= 0x80)
        {
            s.WriteByte((byte)(value | 0x80));
            value >>= 7;
        }
        s.WriteByte((byte)value);
    }
}
