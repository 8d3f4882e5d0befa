using Xunit;

namespace MiniGemini.Tests.Cli;

/// <summary>The train command as a user runs it: a stage on a new tiny model, a second stage --from it, refusals.</summary>
public sealed class TrainCliTests : IDisposable
{
    readonly string _root = Directory.CreateTempSubdirectory("minigemini-cli-train-").FullName;

    public void Dispose() => Directory.Delete(_root, recursive: true);

    [Fact]
    public async Task A_second_stage_starts_from_the_first_and_saves_a_loadable_model()
    {
        var first = Path.Combine(_root, "stage1");
        var run1 = await CliProcess.RunAsync(["train", "--out", first, "--variant", "tiny", "--llm-width", "32", "--stage", "language", "--steps", "3", "--warmup", "1", "--batch-size", "2", "--quiet"]);
        Assert.True(run1.ExitCode == 0, run1.ToString());
        Assert.Contains("\"hidden_size\": 32", File.ReadAllText(Path.Combine(first, "config.json")), StringComparison.Ordinal);
        foreach (var file in new[] { "config.json", "model.safetensors", "tokenizer.model", "losses.json", "loss.png", "clip-vit/config.json" })
            Assert.True(File.Exists(Path.Combine(first, file)), $"{file} is missing\n{run1}");

        var plot = await CliProcess.RunAsync(["plot", "--losses", first, "--out", Path.Combine(_root, "replot.png")]);
        Assert.True(plot.ExitCode == 0, plot.ToString());
        Assert.Equal([0x89, (byte)'P', (byte)'N', (byte)'G'], File.ReadAllBytes(Path.Combine(_root, "replot.png"))[..4]);

        var second = Path.Combine(_root, "stage2");
        var run2 = await CliProcess.RunAsync(["train", "--out", second, "--from", first, "--stage", "full", "--steps", "2", "--warmup", "1", "--batch-size", "2", "--seed", "2", "--json",
            "--whiten-projector", "--answer-focus-weight", "1", "--answer-focus-layer", "1"]);
        Assert.True(run2.ExitCode == 0, run2.ToString());
        Assert.Contains("\"steps\":2", run2.Stdout, StringComparison.Ordinal);
        Assert.Contains("Whitened the projector's input on the image tokens of 512 training pictures", run2.Stderr, StringComparison.Ordinal);
        Assert.Contains("answer focus head on the asked-about object's token", run2.Stderr, StringComparison.Ordinal);

        var answer = await CliProcess.RunAsync(["describe", "--model", second, "--template", "vicuna_v1", "--max-new-tokens", "4", "--json"]);
        Assert.True(answer.ExitCode == 0, answer.ToString());
    }

    [Fact]
    public async Task The_tower_stages_report_held_out_accuracy_and_the_vision_stage_the_attention_on_the_digits()
    {
        var crops = Path.Combine(_root, "crops");
        var run1 = await CliProcess.RunAsync(["train", "--out", crops, "--variant", "tiny", "--stage", "hr-crops", "--crop-readout", "mining", "--steps", "2", "--warmup", "1", "--batch-size", "4"]);
        Assert.True(run1.ExitCode == 0, run1.ToString());
        Assert.Matches(@"Held-out crops: digit \d+\.\d %\.", run1.Stderr);

        var vision = Path.Combine(_root, "vision");
        var run2 = await CliProcess.RunAsync(["train", "--out", vision, "--from", crops, "--stage", "vision", "--steps", "2", "--warmup", "1", "--batch-size", "2"]);
        Assert.True(run2.ExitCode == 0, run2.ToString());
        Assert.Matches(@"Held-out cells: present \d+\.\d %, shape .*, digit \d+\.\d %, cell \d+\.\d %; mining attention on the digit \d+\.\d %\.", run2.Stderr);

        var readout = await CliProcess.RunAsync(["train", "--out", Path.Combine(_root, "z"), "--variant", "tiny", "--stage", "hr-crops", "--crop-readout", "median"]);
        Assert.True(readout.ExitCode == 2, readout.ToString());
        Assert.Contains("median", readout.Stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Bad_arguments_exit_with_a_message_naming_them()
    {
        var taken = Directory.CreateDirectory(Path.Combine(_root, "taken")).FullName;
        File.WriteAllText(Path.Combine(taken, "notes.txt"), "mine");
        var occupied = await CliProcess.RunAsync(["train", "--out", taken, "--variant", "tiny", "--steps", "1"]);
        Assert.True(occupied.ExitCode == 1, occupied.ToString());
        Assert.Contains(taken, occupied.Stderr, StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", occupied.Stderr, StringComparison.Ordinal);

        var variant = await CliProcess.RunAsync(["train", "--out", Path.Combine(_root, "x"), "--variant", "huge"]);
        Assert.True(variant.ExitCode == 2, variant.ToString());
        Assert.Contains("huge", variant.Stderr, StringComparison.Ordinal);

        var width = await CliProcess.RunAsync(["train", "--out", Path.Combine(_root, "w"), "--variant", "tiny", "--llm-width", "33"]);
        Assert.True(width.ExitCode == 2, width.ToString());
        Assert.Contains("--llm-width 33", width.Stderr, StringComparison.Ordinal);

        var layer = await CliProcess.RunAsync(["train", "--out", Path.Combine(_root, "l"), "--variant", "tiny", "--steps", "1", "--answer-focus-weight", "1", "--answer-focus-layer", "5"]);
        Assert.True(layer.ExitCode == 1, layer.ToString());
        Assert.Contains("AnswerFocusLayer is 5, but the LLM has 2 layers", layer.Stderr, StringComparison.Ordinal);

        File.WriteAllText(Path.Combine(_root, "losses.json"), "{\"loss\": 1}");
        var plot = await CliProcess.RunAsync(["plot", "--losses", Path.Combine(_root, "losses.json")]);
        Assert.True(plot.ExitCode == 1, plot.ToString());
        Assert.Contains("losses.json", plot.Stderr, StringComparison.Ordinal);

        var from = await CliProcess.RunAsync(["train", "--out", Path.Combine(_root, "y"), "--from", Path.Combine(_root, "nothing"), "--steps", "1"]);
        Assert.True(from.ExitCode == 1, from.ToString());
        Assert.Contains("nothing", from.Stderr, StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", from.Stderr, StringComparison.Ordinal);
    }
}
