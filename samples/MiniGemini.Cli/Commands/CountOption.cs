using System.CommandLine.Parsing;
using System.Globalization;

namespace MiniGemini.Cli.Commands;

/// <summary>Whole-number options of the dataset and eval commands, with the range checked as a usage error naming the option.</summary>
static class CountOption
{
    public static Func<ArgumentResult, int> Parser(string option, int minimum) => result =>
    {
        if (result.Tokens.Count == 0) return default;
        var text = result.Tokens[^1].Value;
        if (!int.TryParse(text, NumberStyles.Integer, CultureInfo.InvariantCulture, out var value) || value < minimum)
            result.AddError($"{option} must be an integer ≥ {minimum} (got {text}).");
        return value;
    };
}
