using System.Text;

namespace MiniGemini.Text.SentencePiece;

/// <summary>
/// SentencePiece's BPE encoder (<c>bpe_model.cc</c>), reproduced id for id: normalize (identity rules, ▁ for
/// spaces, optional dummy prefix), split into characters with user-defined pieces kept whole, then repeatedly
/// merge the adjacent pair whose merged piece has the highest score (the leftmost on ties), using a priority
/// queue over a linked list of symbols. Unknown symbols fall back to <c>&lt;0xXX&gt;</c> byte pieces, or to one
/// unknown id per run of unknown symbols when the model has no byte fallback.
/// </summary>
/// <param name="model">The parsed model.</param>
/// <param name="legacy">
/// Hugging Face's <c>legacy</c> flag (<c>tokenizer_config.json</c>; true when absent, as in transformers 4.36): every
/// piece of text between special tokens gets the dummy prefix. When false, only text at the very start does.
/// </param>
internal sealed class SentencePieceBpe(SentencePieceModel model, bool legacy = true) : ITokenizerModel
{
    static readonly AgendaOrder Order = new();

    public SentencePieceModel Model { get; } = model;

    public bool Legacy { get; } = legacy;

    /// <summary>Encode word by word when the vocabulary allows it (see <see cref="SentencePieceModel.MergesStayWithinWords"/>); off only to test that it changes nothing.</summary>
    internal bool SplitAtWords { get; init; } = true;

    public int Count => Model.Count;

    public void Encode(string text, bool isFirstSegment, List<int> output) => EncodeWithPrefix(text, Legacy || isFirstSegment, output);

    public int? TokenToId(string token) => Model.FindPiece(token);

    public string? IdToToken(int id) => id >= 0 && id < Model.Count ? Model.Pieces[id] : null;

    public IIncrementalDecoder CreateDecoder() => new SentencePieceDecoder(Model);

    /// <summary>
    /// Encodes <paramref name="text"/>, appending ids to <paramref name="output"/>. <paramref name="addDummyPrefix"/>
    /// prepends ▁, and is only honoured when the model's normalizer asks for a dummy prefix.
    /// </summary>
    public void EncodeWithPrefix(ReadOnlySpan<char> text, bool addDummyPrefix, List<int> output)
    {
        var normalized = Normalize(text, addDummyPrefix);
        if (normalized.Length > 0) EncodeNormalized(normalized, output);
    }

    /// <summary>
    /// SentencePiece's <c>Normalizer::Normalize</c> for an identity normalizer (no character map);
    /// <paramref name="addDummyPrefix"/> only applies when the model's normalizer has add_dummy_prefix.
    /// </summary>
    public string Normalize(ReadOnlySpan<char> text, bool addDummyPrefix)
    {
        addDummyPrefix &= Model.AddDummyPrefix;
        var removeExtra = Model.RemoveExtraWhitespaces;
        if (removeExtra) text = text.TrimStart(' ');
        if (text.IsEmpty) return "";

        var space = Model.Whitespace;
        var sb = new StringBuilder(text.Length + 1);
        if (addDummyPrefix) sb.Append(space);
        var previousWasSpace = removeExtra;
        for (var i = 0; i < text.Length; i++)
        {
            var c = text[i];
            if (c == ' ')
            {
                if (!previousWasSpace) sb.Append(space);
                previousWasSpace = removeExtra;
                continue;
            }
            previousWasSpace = false;
            if (char.IsHighSurrogate(c) && i + 1 < text.Length && char.IsLowSurrogate(text[i + 1]))
            {
                sb.Append(c).Append(text[++i]);
            }
            else if (char.IsSurrogate(c))
            {
                sb.Append('\uFFFD'); // malformed input, as SentencePiece maps invalid UTF-8
            }
            else
            {
                sb.Append(c);
            }
        }
        if (removeExtra)
            while (sb.Length > 0 && sb[^1] == space) sb.Length--;
        return sb.ToString();
    }

    void EncodeNormalized(string s, List<int> output)
    {
        var work = new Workspace(s.Length);
        var previousWasUnknown = false;
        if (!(SplitAtWords && Model.MergesStayWithinWords))
        {
            EncodeRange(s, 0, s.Length, work, output, ref previousWasUnknown);
            return;
        }
        // No piece holds a space after a non-space, so no merge crosses the start of a word: encoding word by word
        // gives SentencePiece's result (merge order within each word is unchanged) with small queues.
        var space = Model.Whitespace;
        var wordStart = 0;
        for (var i = 1; i < s.Length; i++)
        {
            if (s[i] != space || s[i - 1] == space) continue;
            EncodeRange(s, wordStart, i, work, output, ref previousWasUnknown);
            wordStart = i;
        }
        EncodeRange(s, wordStart, s.Length, work, output, ref previousWasUnknown);
    }

    /// <summary>Reusable buffers for one call: symbols of the current range and the merge agenda.</summary>
    sealed class Workspace(int capacity)
    {
        public readonly int[] Start = new int[capacity], Length = new int[capacity], Prev = new int[capacity], Next = new int[capacity];
        public readonly bool[] Frozen = new bool[capacity];
        public readonly PriorityQueue<(int Left, int Right, int Size), (float Score, int Left)> Agenda = new(Order);
    }

    void EncodeRange(string s, int from, int to, Workspace work, List<int> output, ref bool previousWasUnknown)
    {
        // Symbols: spans of s in a doubly linked list; a merged-away symbol has length 0.
        var (start, length, prev, next, frozen) = (work.Start, work.Length, work.Prev, work.Next, work.Frozen);
        var count = 0;
        for (var pos = from; pos < to; count++)
        {
            var userDefined = Model.UserDefined.Match(s.AsSpan(pos, to - pos))?.Length ?? 0;
            var len = userDefined > 0 ? userDefined
                : char.IsHighSurrogate(s[pos]) && pos + 1 < to && char.IsLowSurrogate(s[pos + 1]) ? 2 : 1;
            start[count] = pos;
            length[count] = len;
            frozen[count] = userDefined > 0;
            prev[count] = count - 1;
            next[count] = pos + len < to ? count + 1 : -1;
            pos += len;
        }

        var agenda = work.Agenda;
        agenda.Clear();
        Dictionary<string, (string, string)>? reverseMerges = null;

        void MaybeAddPair(int left, int right)
        {
            if (left < 0 || right < 0 || frozen[left] || frozen[right]) return;
            var size = length[left] + length[right];
            if (!Model.MergeablePieces.TryGet(s.AsSpan(start[left], size), out var id)) return;
            agenda.Enqueue((left, right, size), (Model.Scores[id], left));
            if (Model.IsUnused(id))
            {
                // An unused piece is never emitted: remember how it was built, to split it again at the end.
                reverseMerges ??= new Dictionary<string, (string, string)>(StringComparer.Ordinal);
                reverseMerges[s.Substring(start[left], size)] =
                    (s.Substring(start[left], length[left]), s.Substring(start[right], length[right]));
            }
        }

        for (var i = 1; i < count; i++) MaybeAddPair(i - 1, i);

        while (agenda.TryDequeue(out var pair, out _))
        {
            var (left, right, size) = pair;
            // Stale entry: one side was merged into something else since it was queued.
            if (length[left] == 0 || length[right] == 0 || length[left] + length[right] != size) continue;
            length[left] = size;
            next[left] = next[right];
            if (next[right] >= 0) prev[next[right]] = left;
            length[right] = 0;
            MaybeAddPair(prev[left], left);
            MaybeAddPair(left, next[left]);
        }

        for (var i = 0; i != -1; i = next[i])
            Emit(s.AsSpan(start[i], length[i]), reverseMerges, output, ref previousWasUnknown);
    }

    void Emit(ReadOnlySpan<char> piece, Dictionary<string, (string, string)>? reverseMerges, List<int> output, ref bool previousWasUnknown)
    {
        var id = Model.FindPiece(piece) ?? Model.UnkId;
        if (Model.IsUnused(id) && reverseMerges is not null && reverseMerges.TryGetValue(piece.ToString(), out var parts))
        {
            Emit(parts.Item1, reverseMerges, output, ref previousWasUnknown);
            Emit(parts.Item2, reverseMerges, output, ref previousWasUnknown);
            return;
        }

        var isUnknown = id == Model.UnkId;
        if (isUnknown && Model.ByteFallback)
        {
            var maxBytes = Encoding.UTF8.GetMaxByteCount(piece.Length);
            Span<byte> utf8 = maxBytes <= 64 ? stackalloc byte[maxBytes] : new byte[maxBytes];
            var n = Encoding.UTF8.GetBytes(piece, utf8);
            foreach (var b in utf8[..n]) output.Add(Model.ByteIds[b]);
        }
        else if (!(isUnknown && previousWasUnknown))
        {
            output.Add(id); // a run of unknown symbols becomes one unknown id
        }
        previousWasUnknown = isUnknown;
    }

    /// <summary>Highest score first; on equal scores the leftmost pair (SentencePiece's SymbolPairComparator).</summary>
    sealed class AgendaOrder : IComparer<(float Score, int Left)>
    {
        public int Compare((float Score, int Left) a, (float Score, int Left) b)
        {
            if (a.Score > b.Score) return -1;
            if (a.Score < b.Score) return 1;
            return a.Left.CompareTo(b.Left);
        }
    }
}
