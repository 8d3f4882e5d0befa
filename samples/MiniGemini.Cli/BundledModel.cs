namespace MiniGemini.Cli;

/// <summary>
/// The demo model copied next to the program at build time: a Mini-Gemini trained from scratch by this project on
/// the Detail Shapes task (docs/training.md), and an example picture of that task that its training never saw.
/// </summary>
static class BundledModel
{
    static string Root => Path.Combine(AppContext.BaseDirectory, "default-model");

    public static string ModelPath => Path.Combine(Root, "detail-shapes-mgm");

    public static string ExampleImage => Path.Combine(Root, "example.png");

    public const string Notice =
        "No --model given: running the bundled demo model, a 5-million-parameter Mini-Gemini trained on the Detail Shapes\n" +
        "task (pictures of up to four shapes with digits; docs/training.md); it knows nothing else. For other pictures point\n" +
        "at a Mini-Gemini checkpoint, e.g. --model path/to/MGM-7B --tower-search-root path/to/model_zoo/OpenAI";
}
