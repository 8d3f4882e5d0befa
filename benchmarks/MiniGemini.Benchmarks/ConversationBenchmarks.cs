using BenchmarkDotNet.Attributes;
using MiniGemini.Generation;
using TorchSharp;

namespace MiniGemini.Benchmarks;

/// <summary>
/// Time to the first token of the 5th turn of a 5-turn conversation about a picture, on the bundled demo model (CPU,
/// float32, one thread). Baseline: a model without the conversation cache, which encodes the picture and prefills the
/// whole conversation. Kept: the default model, which has answered the four turns before (each iteration replays
/// them first, outside the measurement), so it reuses the picture's tokens and the conversation's keys and values and
/// prefills only the new question.
/// </summary>
[SimpleJob(launchCount: 1, warmupCount: 3, iterationCount: 15, invocationCount: 1)]
public class ConversationBenchmarks
{
    static readonly string[] Questions =
    [
        "How many shapes are there?", "What shape is at the top left?", "What color is the shape at the top right?",
        "What digit is at the bottom left?", "Describe the image.",
    ];
    static readonly GenerationOptions FirstToken = new() { MaxNewTokens = 1 };

    MiniGeminiModel _kept = null!, _recomputed = null!;
    ImageInput _picture = null!;
    MiniGeminiPrompt _fifth = null!;

    /// <summary>Loads the model twice and records the conversation's first four answers.</summary>
    [GlobalSetup]
    public void Setup()
    {
        torch.set_num_threads(1); // as the other CPU benchmarks: steadier on a small shared machine
        var folder = Path.Combine(RepositoryRoot(), "samples", "MiniGemini.Cli", "DefaultModel");
        _picture = ImageInput.FromFile(Path.Combine(folder, "example.png"));
        _kept = MiniGeminiBuilder.FromPretrained(Path.Combine(folder, "detail-shapes-mgm")).Build();
        _recomputed = MiniGeminiBuilder.FromPretrained(Path.Combine(folder, "detail-shapes-mgm")).WithConversationCache(0).Build();
        _fifth = new MiniGeminiPrompt { Turns = Replay(_recomputed) };
    }

    /// <summary>Asks the first four questions (each with the answers so far) and returns the turns with the fifth question.</summary>
    List<ChatTurn> Replay(MiniGeminiModel model)
    {
        var turns = new List<ChatTurn>();
        foreach (var question in Questions[..^1])
        {
            turns.Add(turns.Count == 0 ? ChatTurn.User(question, _picture) : ChatTurn.User(question));
            turns.Add(ChatTurn.Assistant(model.Generate(new MiniGeminiPrompt { Turns = [.. turns] }).Text));
        }
        turns.Add(ChatTurn.User(Questions[^1]));
        return turns;
    }

    /// <summary>The default model answers the four turns before, from an empty cache.</summary>
    [IterationSetup(Target = nameof(Kept))]
    public void AnswerFourTurns()
    {
        _kept.Conversations!.Clear();
        Replay(_kept);
    }

    /// <summary>The 5th turn recomputed: picture encoded, whole conversation prefilled.</summary>
    [Benchmark(Baseline = true)]
    public int Recomputed() => _recomputed.Generate(_fifth, FirstToken).TokenIds[0];

    /// <summary>The 5th turn after the four before on the same model: only the new question is prefilled.</summary>
    [Benchmark]
    public int Kept() => _kept.Generate(_fifth, FirstToken).TokenIds[0];

    /// <summary>Releases both models.</summary>
    [GlobalCleanup]
    public void Cleanup()
    {
        _kept.Dispose();
        _recomputed.Dispose();
    }

    internal static string RepositoryRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "MiniGemini.Core.sln"))) return dir.FullName;
        throw new DirectoryNotFoundException($"No MiniGemini.Core.sln above {AppContext.BaseDirectory}: run the benchmark from the repository.");
    }
}
