using System.Globalization;
using System.Text;

namespace MiniGemini.Text.SentencePiece;

/// <summary>
/// A word-level BPE vocabulary built from a small corpus, for training a tiny model from scratch: under
/// SentencePiece's BPE every word of the corpus encodes to one piece, punctuation to pieces of its own.
/// <para>
/// The corpus is read as the tokenizer will see it: texts are cut at <c>&lt;s&gt;</c>, <c>&lt;/s&gt;</c>,
/// <c>&lt;unk&gt;</c> (matched whole as special tokens) and at <c>&lt;image&gt;</c> (replaced by image features, see
/// <see cref="ImageSlotTokenizer"/>); each part gets the dummy prefix ▁ and its spaces become ▁, as with a folder
/// that has no <c>tokenizer_config.json</c> (Hugging Face's <c>legacy</c> behaviour). Each space-separated word is
/// split into <see cref="SplitWord">segments</see>: runs of letters, digits and combining marks (<c>shapes</c>, <c>2</c>),
/// a contraction after such a run (<c>'s</c>), an angle-bracket tag (<c>&lt;GEN&gt;</c>, <c>&lt;/h&gt;</c>), or
/// any other single character (<c>.</c>, <c>:</c>, <c>\n</c>). The first segment of a word becomes the piece
/// "▁segment", the others pieces without ▁: <c>shapes.</c> → <c>▁shapes</c> <c>.</c>, <c>left&lt;/h&gt;</c> →
/// <c>▁left</c> <c>&lt;/h&gt;</c>, <c>&lt;h&gt;a</c> → <c>▁&lt;h&gt;</c> <c>a</c>. SentencePiece only knows spaces as
/// word boundaries: <c>\nWhat</c> is one word (<c>▁\n</c> <c>What</c>); a segment after a newline or tab also gets
/// its ▁-piece, so that every word of the corpus, split at any whitespace, encodes to one piece where it stands
/// after a space.
/// </para>
/// <para>
/// SentencePiece's BPE only merges two adjacent symbols into a piece of the vocabulary, the best-scoring pair first,
/// so every prefix of a multi-character piece (from two characters on) is a piece too: <c>▁s</c>, <c>▁sh</c>, …,
/// <c>▁shapes</c>. Pieces starting with ▁ score above the others, and those above the single characters: within a
/// word the ▁-piece grows first, over the whole first segment and no further (a segment ends where no other segment
/// goes on), then the other segments grow from their first character. All pieces have distinct scores. Every
/// character of the corpus texts (▁ included) is a piece; anything else falls back to UTF-8 byte pieces, so any
/// text round-trips. With no space after a non-space inside any piece, merges never cross words. The intended
/// segmentation holds for the words of the corpus; a word outside it may be split otherwise (<c>&lt;GEN</c> gives
/// <c>▁&lt;GEN</c>, a prefix of <c>▁&lt;GEN&gt;</c>, not <c>▁&lt;</c> <c>GEN</c>): its longest known ▁-prefix, then
/// smaller pieces, characters and bytes.
/// </para>
/// </summary>
internal sealed class WordLevelVocabulary
{
    /// <summary>Texts cut out of the corpus before words are taken: the special pieces and MGM's image marker.</summary>
    public static IReadOnlyList<string> Separators { get; } =
        [SentencePieceModelWriter.UnknownPiece, SentencePieceModelWriter.BosPiece, SentencePieceModelWriter.EosPiece, ImageSlotTokenizer.ImageToken];

    const char Space = SentencePieceModel.SpaceSymbol;

    WordLevelVocabulary(List<string> pieces) => Pieces = pieces;

    /// <summary>
    /// The NORMAL pieces, best first: the ▁-pieces (first segments of words and their prefixes), the other
    /// multi-character pieces, then the single characters; each group in ordinal order.
    /// </summary>
    public IReadOnlyList<string> Pieces { get; }

    /// <exception cref="ArgumentException">The corpus holds no text.</exception>
    public static WordLevelVocabulary Build(IEnumerable<string> corpusTexts)
    {
        ArgumentNullException.ThrowIfNull(corpusTexts);
        var wordStarts = new SortedSet<string>(StringComparer.Ordinal);
        var inner = new SortedSet<string>(StringComparer.Ordinal);
        var characters = new SortedSet<string>(StringComparer.Ordinal);

        foreach (var text in corpusTexts)
        {
            ArgumentNullException.ThrowIfNull(text, nameof(corpusTexts));
            // Every character is a piece, those of the separators too (<image> is plain text where it is not spliced out).
            foreach (var rune in Normalize(text).EnumerateRunes()) characters.Add(rune.ToString());
            foreach (var part in SplitAtSeparators(text))
            {
                foreach (var word in Words(part))
                {
                    var segments = SplitWord(word);
                    for (var i = 0; i < segments.Count; i++)
                    {
                        // A segment after a newline or tab also starts a word where it stands after a space.
                        if (i == 0 || IsWhitespace(segments[i - 1])) AddPrefixes(Space + segments[i], wordStarts);
                        if (i > 0) AddPrefixes(segments[i], inner);
                    }
                }
            }
        }
        if (characters.Count == 0) throw new ArgumentException("The corpus holds no text to build a vocabulary from.", nameof(corpusTexts));
        return new WordLevelVocabulary([.. wordStarts, .. inner, .. characters]);
    }

    /// <summary>
    /// The pieces a part of a corpus text (no separators in it) is meant to encode to: per word "▁" + its first
    /// segment, then its other segments; one "▁" per extra space. Words that are not in the corpus encode otherwise.
    /// </summary>
    public static List<string> IntendedPieces(string part)
    {
        ArgumentNullException.ThrowIfNull(part);
        var pieces = new List<string>();
        var normalized = Normalize(part);
        if (normalized.Length == 0) return pieces;
        var tokens = normalized.Split(Space);
        // tokens[0] is empty (the dummy prefix); every later token follows one ▁.
        foreach (var token in tokens.Skip(1))
        {
            if (token.Length == 0)
            {
                pieces.Add(Space.ToString());
                continue;
            }
            var segments = SplitWord(token);
            pieces.Add(Space + segments[0]);
            pieces.AddRange(segments.Skip(1));
        }
        return pieces;
    }

    /// <summary>The text between <see cref="Separators"/>, in order, empty parts left out.</summary>
    public static IEnumerable<string> SplitAtSeparators(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var start = 0;
        for (var pos = 0; pos < text.Length;)
        {
            var separator = Separators.Where(s => text.AsSpan(pos).StartsWith(s, StringComparison.Ordinal)).MaxBy(s => s.Length);
            if (separator is null)
            {
                pos++;
                continue;
            }
            if (pos > start) yield return text[start..pos];
            pos += separator.Length;
            start = pos;
        }
        if (start < text.Length) yield return text[start..];
    }

    /// <summary>A part as SentencePiece normalizes it here: dummy prefix ▁, every space ▁, U+FFFD for a lone surrogate.</summary>
    static string Normalize(string part)
    {
        if (part.Length == 0) return "";
        var sb = new StringBuilder(part.Length + 1).Append(Space);
        foreach (var rune in part.EnumerateRunes()) // a lone surrogate comes as U+FFFD
        {
            if (rune.Value == ' ') sb.Append(Space);
            else sb.Append(rune.ToString());
        }
        return sb.ToString();
    }

    /// <summary>The space-separated words of a part (runs of spaces leave no empty words).</summary>
    static IEnumerable<string> Words(string part) =>
        Normalize(part).Split(Space, StringSplitOptions.RemoveEmptyEntries);

    /// <summary>
    /// Splits one word (no space in it) into segments: letter/digit runs, a contraction (<c>'s</c>, <c>’ll</c>) right
    /// after such a run, a tag <c>&lt;name&gt;</c> or <c>&lt;/name&gt;</c>, otherwise a single character.
    /// </summary>
    public static List<string> SplitWord(string word)
    {
        ArgumentException.ThrowIfNullOrEmpty(word);
        var segments = new List<string>();
        var previousWasRun = false;
        for (var pos = 0; pos < word.Length;)
        {
            int length;
            var isRun = false;
            if (IsWordRune(word, pos))
            {
                length = RunLength(word, pos);
                isRun = true;
            }
            else if (previousWasRun && word[pos] is '\'' or '\u2019' && pos + 1 < word.Length && IsWordRune(word, pos + 1))
            {
                length = 1 + RunLength(word, pos + 1);
            }
            else if (TagLength(word, pos, initial: segments.Count == 0) is > 0 and var tag)
            {
                length = tag;
            }
            else
            {
                length = char.IsSurrogatePair(word, pos) ? 2 : 1;
            }
            segments.Add(word.Substring(pos, length));
            previousWasRun = isRun;
            pos += length;
        }
        return segments;
    }

    static bool IsWhitespace(string segment) => Rune.TryGetRuneAt(segment, 0, out var rune) && Rune.IsWhiteSpace(rune);

    static bool IsWordRune(string s, int pos)
    {
        if (Rune.DecodeFromUtf16(s.AsSpan(pos), out var rune, out _) != System.Buffers.OperationStatus.Done) return false;
        return Rune.GetUnicodeCategory(rune) switch
        {
            UnicodeCategory.UppercaseLetter or UnicodeCategory.LowercaseLetter or UnicodeCategory.TitlecaseLetter
                or UnicodeCategory.ModifierLetter or UnicodeCategory.OtherLetter => true,
            UnicodeCategory.DecimalDigitNumber or UnicodeCategory.LetterNumber or UnicodeCategory.OtherNumber => true,
            UnicodeCategory.NonSpacingMark or UnicodeCategory.SpacingCombiningMark or UnicodeCategory.EnclosingMark => true,
            _ => false,
        };
    }

    static int RunLength(string s, int pos)
    {
        var end = pos;
        while (end < s.Length && IsWordRune(s, end)) end += char.IsSurrogatePair(s, end) ? 2 : 1;
        return end - pos;
    }

    /// <summary>
    /// Length of a tag <c>&lt;name&gt;</c> / <c>&lt;/name&gt;</c> (name: letters, digits, marks, <c>_</c>) at
    /// <paramref name="pos"/>, or 0. A tag that spells a special or byte piece is not one; inside a word, neither is
    /// a tag that starts as one does (<c>&lt;s…&gt;</c>, <c>&lt;/s…&gt;</c>, <c>&lt;unk…&gt;</c>, <c>&lt;0xAB…&gt;</c>),
    /// since its prefix and a closing <c>&gt;</c> would make a special piece, which some BPE encoders
    /// (Microsoft.ML.Tokenizers) would then merge into.
    /// </summary>
    static int TagLength(string s, int pos, bool initial)
    {
        if (s[pos] != '<') return 0;
        var end = pos + 1;
        if (end < s.Length && s[end] == '/') end++;
        var nameStart = end;
        while (end < s.Length && (s[end] == '_' || IsWordRune(s, end))) end += char.IsSurrogatePair(s, end) ? 2 : 1;
        if (end == nameStart || end >= s.Length || s[end] != '>') return 0;
        var tag = s.Substring(pos, end + 1 - pos);
        foreach (var reserved in ReservedPieces)
            if (tag == reserved || (!initial && tag.StartsWith(reserved[..^1], StringComparison.Ordinal))) return 0;
        return tag.Length;
    }

    static readonly string[] ReservedPieces =
    [
        SentencePieceModelWriter.UnknownPiece, SentencePieceModelWriter.BosPiece, SentencePieceModelWriter.EosPiece,
        .. Enumerable.Range(0, 256).Select(b => $"<0x{b:X2}>"),
    ];

    /// <summary>Every prefix of two or more characters (code points) of <paramref name="piece"/>, the piece itself included.</summary>
    static void AddPrefixes(string piece, SortedSet<string> into)
    {
        var runes = 0;
        for (var end = 0; end < piece.Length;)
        {
            end += char.IsSurrogatePair(piece, end) ? 2 : 1;
            if (++runes >= 2) into.Add(piece[..end]);
        }
    }
}
