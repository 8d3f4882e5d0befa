namespace MiniGemini.Training.DetailShapes;

/// <summary>
/// Writes an evaluation set: sampled scenes rendered as PNGs in <c>images/</c>, every question the spec asks about
/// each, then the draw requests, all in <c>questions.jsonl</c> with image paths relative to it.
/// </summary>
public static class EvaluationSetWriter
{
    /// <summary>The folder under the set's folder that holds the pictures.</summary>
    public const string ImagesFolderName = "images";

    /// <summary>
    /// Samples <paramref name="imageCount"/> scenes and then <paramref name="drawCount"/> draw requests from
    /// <c>new Random(seed)</c>, renders each scene to <c>images/NNNNN.png</c> and writes <c>questions.jsonl</c>;
    /// the same arguments give the same files.
    /// </summary>
    /// <returns>The full path of the questions file.</returns>
    public static string Write(string folder, int seed, int imageCount, int drawCount = 0)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(folder);
        ArgumentOutOfRangeException.ThrowIfNegative(imageCount);
        ArgumentOutOfRangeException.ThrowIfNegative(drawCount);
        var root = Path.GetFullPath(folder);
        var images = Path.Combine(root, ImagesFolderName);
        Directory.CreateDirectory(images);

        var random = new Random(seed);
        var sampler = new SceneSampler(random);
        var scenes = new Scene[imageCount];
        for (int i = 0; i < imageCount; i++) scenes[i] = sampler.Next();
        var draws = new TaskQuestion[drawCount];
        for (int i = 0; i < drawCount; i++) draws[i] = QuestionWriter.Draw(random);

        int digits = Math.Max(5, (imageCount - 1).ToString(System.Globalization.CultureInfo.InvariantCulture).Length);
        string Name(int i) => i.ToString(System.Globalization.CultureInfo.InvariantCulture).PadLeft(digits, '0') + ".png";
        Parallel.For(0, imageCount, i => File.WriteAllBytes(Path.Combine(images, Name(i)), SceneRenderer.RenderPng(scenes[i])));

        var items = new List<EvaluationItem>();
        for (int i = 0; i < imageCount; i++)
        {
            var image = $"{ImagesFolderName}/{Name(i)}";
            items.AddRange(QuestionWriter.Questions(scenes[i]).Select(q => EvaluationItem.From(q, image)));
        }
        items.AddRange(draws.Select(q => EvaluationItem.From(q, null)));
        var questions = Path.Combine(root, EvaluationSet.QuestionsFileName);
        EvaluationSet.Write(questions, items);
        return questions;
    }
}
