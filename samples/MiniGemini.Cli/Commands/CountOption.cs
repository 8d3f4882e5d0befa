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

    /// <summary>As <see cref="Parser"/>, for an option that may be left out (null).</summary>
    public static Func<ArgumentResult, int?> OptionalParser(string option, int minimum)
    {
        var parse = Parser(option, minimum);
        return result => result.Tokens.Count == 0 ? null : parse(result);
    }
}
