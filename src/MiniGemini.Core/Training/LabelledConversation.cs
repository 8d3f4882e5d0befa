using MiniGemini.Text;

namespace MiniGemini.Training;

/// <summary>
/// A training conversation as the LLM sees it: token ids (−200 where the image goes) and, aligned with them, the
/// labels — the answer tokens and the separator that ends each answer; every other position, system prompt, user
/// turns, role headers and the image slot, is <see cref="IgnoreIndex"/> (MGM's <c>preprocess_*</c>).
/// </summary>
internal sealed record LabelledConversation(int[] Ids, int[] Labels)
{
    /// <summary>Index in <see cref="Ids"/> of each answer's first token, one per exchange.</summary>
    public int[] AnswerStarts { get; init; } = [];

    /// <summary>Label of positions without loss (PyTorch's and MGM's IGNORE_INDEX).</summary>
    public const int IgnoreIndex = -100;

    /// <summary>
    /// Renders <paramref name="sample"/> with the template and marks each answer by the token counts of the prompt
    /// before it and after it, checking that those prefixes tokenize to a prefix of the whole conversation.
    /// </summary>
    /// <exception cref="TrainingDataException">No exchanges, an exchange without answer, a user text holding
    /// <c>&lt;image&gt;</c>, or an answer whose tokens depend on what follows it.</exception>
    public static LabelledConversation Create(TrainingSample sample, MiniGeminiTokenizer tokenizer, ConversationTemplate template)
    {
        var exchanges = sample.Exchanges;
        if (exchanges is not { Count: > 0 }) throw new TrainingDataException(sample.Name, "the conversation has no exchanges.");
        for (int i = 0; i < exchanges.Count; i++)
        {
            if (string.IsNullOrWhiteSpace(exchanges[i].Assistant))
                throw new TrainingDataException(sample.Name, $"exchange {i} has no answer, so it has nothing to learn.");
            if (exchanges[i].User.Contains(ImageSlotTokenizer.ImageToken, StringComparison.Ordinal) || exchanges[i].Assistant!.Contains(ImageSlotTokenizer.ImageToken, StringComparison.Ordinal))
                throw new TrainingDataException(sample.Name, $"exchange {i} contains the literal text '{ImageSlotTokenizer.ImageToken}'; pass the image as TrainingSample.Image.");
        }
        // The image goes before the first user message, as in MGM's training data.
        var turns = exchanges.Select((e, i) => e with { Images = i == 0 && sample.Image is not null ? 1 : 0 }).ToList();
        int[] Tokens(int count, bool answered)
        {
            var part = turns.Take(count).ToList();
            if (!answered) part[^1] = part[^1] with { Assistant = null };
            return ImageSlotTokenizer.Tokenize(tokenizer, template.Render(part, sample.GenerateImage && count == turns.Count));
        }

        var ids = Tokens(turns.Count, answered: true);
        var labels = Enumerable.Repeat(IgnoreIndex, ids.Length).ToArray();
        var starts = new int[turns.Count];
        for (int k = 1; k <= turns.Count; k++)
        {
            var before = Tokens(k, answered: false);
            var after = k == turns.Count ? ids : Tokens(k, answered: true);
            if (!IsPrefix(before, ids) || !IsPrefix(after, ids) || after.Length <= before.Length)
                throw new TrainingDataException(sample.Name,
                    $"the tokens of answer {k - 1} depend on the text around it (the prompt before it does not tokenize to a prefix of the conversation).");
            for (int i = before.Length; i < after.Length; i++) labels[i] = ids[i];
            starts[k - 1] = before.Length;
        }
        return new LabelledConversation(ids, labels) { AnswerStarts = starts };
    }

    /// <summary>
    /// The position, once each image slot holds <paramref name="tokensPerImage"/> tokens, of <see cref="Ids"/> index
    /// <paramref name="index"/>, or of token <paramref name="imageToken"/> when that index is an image slot.
    /// </summary>
    public int Expanded(int index, int tokensPerImage, int imageToken = 0) =>
        index + Ids.Take(index).Count(id => id == ImageSlotTokenizer.ImageTokenIndex) * (tokensPerImage - 1) + imageToken;

    /// <summary>Positions the conversation takes in the LLM once each image slot holds <paramref name="tokensPerImage"/> tokens.</summary>
    public int Length(int tokensPerImage) => Expanded(Ids.Length, tokensPerImage);

    static bool IsPrefix(int[] prefix, int[] whole) => prefix.Length <= whole.Length && prefix.AsSpan().SequenceEqual(whole.AsSpan(0, prefix.Length));
}
