using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using System.Text;
using MiniGemini.Training.DetailShapes;

namespace MiniGemini.Cli.Commands;

/// <summary>
/// <c>eval</c>: asks the model every question of a Detail Shapes evaluation file (images from anywhere; draw requests
/// as image-generation prompts without an image), scores the answer texts and prints the report.
/// </summary>
static class EvalCommand
{
    const int DefaultBatchSize = 8;

    public static Command Define(CliDefinition cli)
    {
        var questions = new Option<string>("--questions")
        {
            Description = "Evaluation file in JSON Lines ({\"image\", \"question\", \"answer\", \"type\"} a line; image paths relative to the file or absolute), e.g. from the dataset command.",
            HelpName = "FILE",
            Required = true,
        };
        var limit = new Option<int?>("--limit")
        {
            Description = "Ask only the first N questions of the file.",
            HelpName = "N",
            CustomParser = r => CountOption.Parser("--limit", minimum: 1)(r),
        };
        var batchSize = new Option<int>("--batch-size")
        {
            Description = "Questions answered together in one batch.",
            HelpName = "N",
            CustomParser = CountOption.Parser("--batch-size", minimum: 1),
            DefaultValueFactory = _ => DefaultBatchSize,
        };
        var predictions = new Option<string?>("--predictions")
        {
            Description = "Also write every question with the model's answer and whether it was right to this file (JSON Lines).",
            HelpName = "FILE",
        };
        var command = new Command("eval", "Score a model on a Detail Shapes evaluation file: accuracy per question type, coarse, fine, describe and overall (a table, or JSON with --json).")
        {
            questions, limit, batchSize, predictions,
        };
        command.SetAction((parse, ct) => RunAsync(cli.Settings(parse), parse.GetRequiredValue(questions), parse.GetValue(limit),
            parse.GetValue(batchSize), parse.GetValue(predictions), ct));
        return command;
    }

    static async Task<int> RunAsync(CommonSettings settings, string questionsPath, int? limit, int batchSize, string? predictionsPath,
        CancellationToken cancellationToken)
    {
        // Read and check the whole file (and that its images exist) before the model loads.
        var items = EvaluationSet.Read(questionsPath, checkImages: true);
        if (items.Count == 0) throw new IOException($"{Path.GetFullPath(questionsPath)} holds no questions.");
        if (limit is { } n && n < items.Count) items = items.Take(n).ToList();

        using var session = await ModelSession.LoadAsync(settings, imageGenerator: null, cancellationToken);
        var model = session.Model;
        using var predictionFile = predictionsPath is null ? null : new StreamWriter(predictionsPath, append: false, new UTF8Encoding(false));
        var progress = new Progress(settings, items.Count);
        var clock = Stopwatch.StartNew();
        int done = 0;
        // Greedy answers that may use the context's room, unless a token budget was given.
        var options = settings.MaxNewTokensGiven ? settings.Generation : null;
        EvaluationReport? running = null;
        var report = Evaluator.Evaluate(model, items, batchSize, options, (item, answer, correct) =>
        {
            predictionFile?.Write(PredictionLine(item, answer, correct) + "\n");
            (running ??= new EvaluationReport()).Add(item.Type, correct);
            if (++done % batchSize == 0 || done == items.Count) progress.Report(done, running.Overall, clock.Elapsed);
        }, cancellationToken);
        progress.End();
        Console.Out.Write(settings.Json ? report.ToJson() + "\n" : report.ToTable());
        return 0;
    }

    /// <summary>The item as its JSONL line with the model's answer and whether it was right.</summary>
    static string PredictionLine(EvaluationItem item, string prediction, bool correct)
    {
        var line = EvaluationSet.ToJsonLine(item);
        var extra = System.Text.Json.JsonSerializer.Serialize(new Dictionary<string, object> { ["prediction"] = prediction, ["correct"] = correct },
            new System.Text.Json.JsonSerializerOptions { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping });
        return line[..^1] + "," + extra[1..];
    }

    /// <summary>Progress on stderr: one updating line on a terminal, else a line every 5% (off with --quiet).</summary>
    sealed class Progress(CommonSettings settings, int total)
    {
        readonly bool _interactive = !Console.IsErrorRedirected;
        int _lastStep = -1, _lastLength;
        bool _midLine;

        public void Report(int done, Accuracy overall, TimeSpan elapsed)
        {
            if (settings.Quiet) return;
            var accuracy = overall.Value is { } v ? (100 * v).ToString("0.0", CultureInfo.InvariantCulture) + "%" : "-";
            var line = $"Answered {done}/{total} questions, {accuracy} right so far, {elapsed.TotalSeconds:0.0} s";
            if (_interactive)
            {
                Console.Error.Write("\r" + line.PadRight(_lastLength));
                _lastLength = line.Length;
                _midLine = true;
                return;
            }
            int step = done * 20 / total;
            if (step == _lastStep && done < total) return;
            _lastStep = step;
            Console.Error.WriteLine(line);
        }

        public void End()
        {
            if (!_midLine) return;
            Console.Error.WriteLine();
            _midLine = false;
        }
    }
}
