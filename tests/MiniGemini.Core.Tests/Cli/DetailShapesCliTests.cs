using System.Text.Json;
using MiniGemini.Training.DetailShapes;
using Xunit;

namespace MiniGemini.Tests.Cli;

/// <summary>The dataset and eval commands as a user runs them, on the bundled demo model.</summary>
public sealed class DetailShapesCliTests : IDisposable
{
    readonly DirectoryInfo _folder = Directory.CreateTempSubdirectory("detail-shapes-cli-");

    public void Dispose() => _folder.Delete(recursive: true);

    [Fact]
    public async Task Dataset_then_eval_reports_every_group_and_type_with_counts()
    {
        var set = Path.Combine(_folder.FullName, "set");
        var dataset = await CliProcess.RunAsync(["dataset", "--out", set, "--seed", "7", "--images", "2", "--draw", "3"]);
        Assert.True(dataset.ExitCode == 0, dataset.ToString());
        var questions = Path.Combine(set, "questions.jsonl");
        Assert.Equal(questions, dataset.Stdout.Trim());
        Assert.True(File.Exists(Path.Combine(set, "images", "00000.png")), dataset.ToString());
        Assert.True(File.Exists(Path.Combine(set, "images", "00001.png")), dataset.ToString());
        var items = EvaluationSet.Read(questions, checkImages: true);
        Assert.Equal(3, items.Count(i => i.Type == "draw"));

        // Run from another folder: the images are found relative to the questions file. The draw requests come last,
        // so put one in the first ten to exercise the no-image prompt too.
        var mixed = Path.Combine(_folder.FullName, "mixed.jsonl");
        var asked = items.Take(9).Append(items[^1]).ToList();
        // Read gave absolute image paths, so mixed.jsonl (not beside images/) names them absolutely.
        EvaluationSet.Write(mixed, asked.Concat(items.Skip(9)));

        var eval = await CliProcess.RunAsync(["eval", "--questions", mixed, "--limit", "10", "--json", "--max-new-tokens", "6", "--batch-size", "4"],
            workingDirectory: _folder.FullName);
        Assert.True(eval.ExitCode == 0, eval.ToString());
        var lines = eval.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.True(lines.Length == 1, eval.ToString());
        using var json = JsonDocument.Parse(lines[0]);
        var root = json.RootElement;
        Assert.Equal(["overall", "coarse", "fine", "describe", "describe_objects", "draw", "types"], root.EnumerateObject().Select(p => p.Name));
        var types = root.GetProperty("types");
        Assert.Equal(["count", "shape", "color", "digit", "digit_at", "describe", "draw"], types.EnumerateObject().Select(p => p.Name));
        foreach (var type in QuestionType.All)
            Assert.Equal(asked.Count(i => i.Type == type), types.GetProperty(type).GetProperty("total").GetInt32());
        Assert.Equal(10, root.GetProperty("overall").GetProperty("total").GetInt32());
        Assert.Equal(asked.Count(i => QuestionType.Coarse.Contains(i.Type)), root.GetProperty("coarse").GetProperty("total").GetInt32());
        Assert.Equal(asked.Count(i => QuestionType.Fine.Contains(i.Type)), root.GetProperty("fine").GetProperty("total").GetInt32());
        Assert.Equal(1, root.GetProperty("draw").GetProperty("total").GetInt32());
        foreach (var group in root.EnumerateObject().Where(p => p.Name != "types").Select(p => p.Value).Concat(types.EnumerateObject().Select(p => p.Value)))
        {
            int correct = group.GetProperty("correct").GetInt32(), total = group.GetProperty("total").GetInt32();
            Assert.InRange(correct, 0, total);
            var accuracy = group.GetProperty("accuracy");
            if (total == 0) Assert.Equal(JsonValueKind.Null, accuracy.ValueKind);
            else Assert.Equal((double)correct / total, accuracy.GetDouble(), 12);
        }
        Assert.Contains("Answered 10/10 questions", eval.Stderr, StringComparison.Ordinal);

        var table = await CliProcess.RunAsync(["eval", "--questions", questions, "--limit", "3", "--max-new-tokens", "2", "--quiet"]);
        Assert.True(table.ExitCode == 0, table.ToString());
        Assert.Matches(@"overall\s+\d+\s+3\s", table.Stdout);
        Assert.Equal("", table.Stderr);
    }

    [Fact]
    public async Task Eval_of_a_missing_or_malformed_file_exits_1_naming_it_before_loading()
    {
        var missing = Path.Combine(_folder.FullName, "none.jsonl");
        var run = await CliProcess.RunAsync(["eval", "--questions", missing]);
        Assert.True(run.ExitCode == 1, run.ToString());
        Assert.Contains(missing, run.Stderr, StringComparison.Ordinal);
        Assert.DoesNotContain("Loading", run.Stderr, StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", run.Stderr, StringComparison.Ordinal);

        var malformed = Path.Combine(_folder.FullName, "bad.jsonl");
        File.WriteAllText(malformed, "{\"question\": \"Draw a red circle with the digit 1 at the top left.\", \"answer\": \"<h>x</h>\", \"type\": \"draw\"}\n{\"question\": \"q\",\n");
        run = await CliProcess.RunAsync(["eval", "--questions", malformed]);
        Assert.True(run.ExitCode == 1, run.ToString());
        Assert.Contains($"{malformed}, line 2: not valid JSON", run.Stderr, StringComparison.Ordinal);
        Assert.DoesNotContain("Loading", run.Stderr, StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", run.Stderr, StringComparison.Ordinal);

        var usage = await CliProcess.RunAsync(["dataset", "--out", _folder.FullName, "--images", "1"]);
        Assert.True(usage.ExitCode == 2, usage.ToString());
        Assert.Contains("--seed", usage.Stderr, StringComparison.Ordinal);
    }
}
