namespace MiniGemini.Cli.Commands;

/// <summary><c>describe</c>: one question about one image, answered as a stream.</summary>
static class DescribeCommand
{
    public const string DefaultQuestion = "Describe the picture.";

    public static async Task<int> RunAsync(CommonSettings settings, string? imagePath, string? question, CancellationToken cancellationToken)
    {
        var images = Images.Given(imagePath ?? BundledModel.ExampleImage);
        using var session = await ModelSession.LoadAsync(settings, imageGenerator: null, cancellationToken);
        if (imagePath is null) settings.Note($"No --image given: asking about the bundled example picture {BundledModel.ExampleImage}");
        var answer = await new Answerer(session, settings).AnswerAsync(MiniGeminiPrompt.Ask(question ?? DefaultQuestion, images), cancellationToken);
        if (settings.Json) AnswerReport.From(session, answer).Print();
        else settings.Note(answer.Summary());
        return 0;
    }
}
