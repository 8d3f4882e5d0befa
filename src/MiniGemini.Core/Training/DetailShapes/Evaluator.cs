using MiniGemini.Generation;

namespace MiniGemini.Training.DetailShapes;

/// <summary>Scores a model on evaluation items: each question asked on its own (draw requests with <c>&lt;GEN&gt;</c>), greedy, in batches.</summary>
public static class Evaluator
{
    /// <summary>
    /// Answers every item and returns the report. Unless <paramref name="options"/> sets a token budget, answers may
    /// run to the end of the context.
    /// </summary>
    /// <param name="model">The model to score.</param>
    /// <param name="items">The questions (image paths absolute, as <see cref="EvaluationSet.Read"/> gives them).</param>
    /// <param name="batchSize">Questions answered together.</param>
    /// <param name="options">Generation settings (default: greedy, up to the context's end).</param>
    /// <param name="onAnswer">Called with each item, the model's answer and whether it was right.</param>
    /// <param name="cancellationToken">Stops between batches and between tokens.</param>
    public static EvaluationReport Evaluate(MiniGeminiModel model, IReadOnlyList<EvaluationItem> items, int batchSize = 8,
        GenerationOptions? options = null, Action<EvaluationItem, string, bool>? onAnswer = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(items);
        ArgumentOutOfRangeException.ThrowIfLessThan(batchSize, 1);
        var report = new EvaluationReport();
        for (int start = 0; start < items.Count; start += batchSize)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var batch = items.Skip(start).Take(batchSize).ToList();
            var prompts = batch.Select(PromptFor).ToList();
            var responses = model.GenerateBatch(prompts, options, cancellationToken);
            for (int i = 0; i < batch.Count; i++)
            {
                bool correct = report.Score(batch[i], responses[i].Text);
                onAnswer?.Invoke(batch[i], responses[i].Text, correct);
            }
        }
        return report;
    }

    /// <summary>The prompt an item is asked with: the question after its image, or a draw request without image.</summary>
    public static MiniGeminiPrompt PromptFor(EvaluationItem item)
    {
        ArgumentNullException.ThrowIfNull(item);
        ImageInput[] images = item.Image is null ? [] : [ImageInput.FromFile(item.Image)];
        var prompt = MiniGeminiPrompt.Ask(item.Question, images);
        return item.Type == QuestionType.Draw ? prompt with { GenerateImage = true } : prompt;
    }
}
