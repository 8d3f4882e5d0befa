namespace MiniGemini.Cli;

/// <summary>
/// The demo model copied next to the program at build time: the mgm-tiny test fixture (a complete Mini-Gemini with
/// 2-layer towers and LLM and random weights) and an example picture. It shows the whole pipeline running, not answers.
/// </summary>
static class BundledModel
{
    static string Root => Path.Combine(AppContext.BaseDirectory, "default-model");

    public static string ModelPath => Path.Combine(Root, "mgm-tiny");

    public static string ExampleImage => Path.Combine(Root, "example.png");

    public const string Notice =
        "No --model given: running the bundled demo model mgm-tiny, which has random weights, so its answer is\n" +
        "gibberish; it only shows the pipeline working. For real answers point at a Mini-Gemini checkpoint, e.g.\n" +
        "  --model path/to/MGM-7B --tower-search-root path/to/model_zoo/OpenAI";
}
