
namespace MiniGemini.Cli;

/// <summary>What every command needs: which model, where, how to sample, and how to print.</summary>
sealed record CommonSettings
{
    /// <summary>Mini-Gemini's own CLI default.</summary>
    public const int DefaultMaxNewTokens = 512;

    /// <summary>The demo model's answers are noise: a short one shows the stream without a wall of it.</summary>
    public const int BundledMaxNewTokens = 64;

    public required string ModelPath { get; init; }
    public required bool IsBundledModel { get; init; }
    public required string Device { get; init; }
    public required ModelPrecision Precision { get; init; }
    public string? Template { get; init; }
    public IReadOnlyList<string> TowerSearchRoots { get; init; } = [];
    public required GenerationOptions Generation { get; init; }
    /// <summary>False when the token budget is the default, which may then shrink to fit the context.</summary>
    public bool MaxNewTokensGiven { get; init; }
    public bool Json { get; init; }
    public bool Quiet { get; init; }
    public bool Verbose { get; init; }

    /// <summary>Notes for a person (stderr): off with --quiet.</summary>
    public void Note(string text)
    {
        if (!Quiet) Console.Error.WriteLine(text);
    }
}
