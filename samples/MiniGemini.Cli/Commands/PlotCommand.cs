using System.CommandLine;
using System.Text.Json;

namespace MiniGemini.Cli.Commands;

/// <summary><c>plot</c>: draws the loss curve of a training run (its <c>losses.json</c>) as a PNG, as <c>train</c> does at the end.</summary>
static class PlotCommand
{
    public static Command Define()
    {
        var losses = new Option<string>("--losses") { Description = "A run's losses.json (or the run's folder).", HelpName = "FILE", Required = true };
        var output = new Option<string?>("--out") { Description = "The PNG to write; default: loss.png beside losses.json.", HelpName = "PNG" };
        var title = new Option<string?>("--title") { Description = "Title of the plot; default: the run folder's name.", HelpName = "TEXT" };
        var command = new Command("plot", "Draw a training run's loss curve (losses.json) as a PNG.") { losses, output, title };
        command.SetAction(parse => Run(parse.GetRequiredValue(losses), parse.GetValue(output), parse.GetValue(title)));
        return command;
    }

    static int Run(string losses, string? output, string? title)
    {
        var file = Directory.Exists(losses) ? Path.Combine(losses, "losses.json") : losses;
        if (!File.Exists(file)) return Fail($"{Path.GetFullPath(file)}: not found.");
        double[] values;
        try
        {
            using var json = JsonDocument.Parse(File.ReadAllText(file));
            values = json.RootElement.GetProperty("losses").EnumerateArray().Select(v => v.GetDouble()).ToArray();
        }
        catch (Exception e) when (e is JsonException or KeyNotFoundException or InvalidOperationException or FormatException)
        {
            return Fail($"{Path.GetFullPath(file)}: not a losses.json of a training run (an object with a \"losses\" array of numbers): {e.Message}");
        }
        if (values.Length == 0) return Fail($"{Path.GetFullPath(file)}: the run has no steps yet.");
        var folder = Path.GetDirectoryName(Path.GetFullPath(file))!;
        var png = Path.GetFullPath(output ?? Path.Combine(folder, "loss.png"));
        LossPlot.Write(png, values, title ?? $"{Path.GetFileName(folder)}: training loss");
        Console.Out.WriteLine(png);
        return 0;
    }

    static int Fail(string message)
    {
        Console.Error.WriteLine($"error: {message}");
        return 1;
    }
}
