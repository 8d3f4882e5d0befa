using System.CommandLine;
using System.Diagnostics;
using MiniGemini.Training.DetailShapes;

namespace MiniGemini.Cli.Commands;

/// <summary><c>dataset</c>: writes a Detail Shapes evaluation set (pictures and questions.jsonl) from a seed.</summary>
static class DatasetCommand
{
    public static Command Define(CliDefinition cli)
    {
        var output = new Option<string>("--out")
        {
            Description = "Folder to write the set into: images/NNNNN.png and questions.jsonl (created if missing).",
            HelpName = "FOLDER",
            Required = true,
        };
        var images = new Option<int>("--images")
        {
            Description = "How many pictures to sample; each gets every question the task allows about it.",
            HelpName = "N",
            Required = true,
            CustomParser = CountOption.Parser("--images", minimum: 0),
        };
        var draw = new Option<int>("--draw")
        {
            Description = "How many image-generation (draw) requests to add after the pictures' questions.",
            HelpName = "N",
            CustomParser = CountOption.Parser("--draw", minimum: 0),
            DefaultValueFactory = _ => 0,
        };
        var command = new Command("dataset", "Write a Detail Shapes evaluation set: pictures (PNG) and their questions and answers (JSON Lines), all determined by --seed N.")
        {
            output, images, draw,
        };
        // Checked without converting values (converting an option that failed to parse throws here).
        command.Validators.Add(result =>
        {
            if (result.GetResult(cli.Seed) is null) result.AddError("dataset needs --seed N: the set is a function of its seed.");
        });
        command.SetAction(parse => Run(cli.Settings(parse), parse.GetRequiredValue(output), parse.GetValue(cli.Seed)!.Value,
            parse.GetValue(images), parse.GetValue(draw)));
        return command;
    }

    static int Run(CommonSettings settings, string folder, long seed, int images, int draw)
    {
        if (seed is < int.MinValue or > int.MaxValue) return ErrorReport.UsageError($"--seed must be a 32-bit integer for dataset (got {seed}).");
        if (images + draw == 0) return ErrorReport.UsageError("dataset needs --images or --draw above 0.");
        var clock = Stopwatch.StartNew();
        var questions = EvaluationSetWriter.Write(folder, (int)seed, images, draw);
        int count = File.ReadLines(questions).Count(l => l.Length > 0);
        settings.Note($"Wrote {count} questions ({images} pictures, {draw} draw requests; seed {seed}) in {clock.Elapsed.TotalSeconds:0.0} s.");
        Console.Out.WriteLine(questions);
        return 0;
    }
}
