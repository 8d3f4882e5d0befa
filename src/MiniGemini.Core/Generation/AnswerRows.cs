using MiniGemini.Text;

namespace MiniGemini.Generation;

/// <summary>One row's answer: its text (untrimmed), the ids generated for it, its prompt length and why it ended.</summary>
internal sealed record Answer(string Text, IReadOnlyList<int> TokenIds, int PromptLength, FinishReason FinishReason);

/// <summary>
/// Turns the ids a batch generates into each row's answer: text decoded as it streams (never splitting a character),
/// the template's and the request's stop strings matched across token boundaries (the stop string itself is not part
/// of the answer), and the reason each row ended.
/// </summary>
internal sealed class AnswerRows
{
    readonly Row[] _rows;

    public AnswerRows(MiniGeminiTokenizer tokenizer, IReadOnlyList<string> stopStrings, IEnumerable<int> promptLengths) =>
        _rows = [.. promptLengths.Select(length => new Row(tokenizer.CreateStreamingDecoder(), new StopStringMatcher(stopStrings), length))];

    /// <summary>Ids generated so far over all rows.</summary>
    public int Generated { get; private set; }

    /// <summary>The ids row <paramref name="b"/> has received so far (the list grows as the answer does).</summary>
    public IReadOnlyList<int> TokensOf(int b) => _rows[b].Tokens;

    /// <summary>The prompt length of row <paramref name="b"/>.</summary>
    public int PromptLengthOf(int b) => _rows[b].PromptLength;

    /// <summary>Feeds one decoding step; <paramref name="onDelta"/> receives each row's new text. True when every row is done.</summary>
    public bool Push(GeneratedTokens step, Action<int, string> onDelta)
    {
        for (int b = 0; b < _rows.Length; b++)
        {
            var row = _rows[b];
            if (row.Reason is not null || !step.Emitted[b]) continue;
            Generated++;
            row.Tokens.Add(step.TokenIds[b]);
            var delta = row.Matcher.Push(row.Decoder.Append(step.TokenIds[b]));
            row.Text.Append(delta);
            if (delta.Length > 0) onDelta(b, delta);
            if (row.Matcher.Stopped || step.Finished[b]) row.Reason = FinishReason.Stop;
        }
        return _rows.All(r => r.Reason is not null);
    }

    /// <summary>Ends every row still open (its held-back text flushed to <paramref name="onDelta"/>) and gives the answers.</summary>
    public IReadOnlyList<Answer> Finish(Action<int, string> onDelta)
    {
        for (int b = 0; b < _rows.Length; b++)
        {
            var row = _rows[b];
            if (row.Reason is not null) continue;
            var tail = row.Matcher.Push(row.Decoder.Flush()) + row.Matcher.Flush();
            row.Text.Append(tail);
            if (tail.Length > 0) onDelta(b, tail);
            row.Reason = row.Matcher.Stopped ? FinishReason.Stop : FinishReason.Length;
        }
        return [.. _rows.Select(r => new Answer(r.Text.ToString(), r.Tokens, r.PromptLength, r.Reason!.Value))];
    }

    sealed class Row(StreamingTextDecoder decoder, StopStringMatcher matcher, int promptLength)
    {
        public StreamingTextDecoder Decoder { get; } = decoder;
        public StopStringMatcher Matcher { get; } = matcher;
        public int PromptLength { get; } = promptLength;
        public List<int> Tokens { get; } = [];
        public System.Text.StringBuilder Text { get; } = new();
        public FinishReason? Reason { get; set; }
    }
}
