using System.Net;
using System.Text.Json;
using MiniGemini.Tests.Generation;
using MiniGemini.Tests.Parity;
using Xunit;

namespace MiniGemini.Tests.Cli;

/// <summary>
/// The CLI as a user runs it: a real process on the bundled demo model (trained on Detail Shapes), checked through its
/// exit code, stdout and stderr. Each run loads TorchSharp and the model (a few seconds), so runs are few and short.
/// </summary>
public sealed class CliProcessTests
{
    static JsonElement ParseSingleJsonLine(ProcessResult run)
    {
        var lines = run.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.True(lines.Length == 1, $"expected exactly one JSON line on stdout\n{run}");
        using var doc = JsonDocument.Parse(lines[0]);
        return doc.RootElement.Clone();
    }

    static void AssertNoStackTrace(ProcessResult run) =>
        Assert.DoesNotContain("   at ", run.Stderr, StringComparison.Ordinal);

    [Fact]
    public async Task Describe_json_reports_the_answer_and_streaming_prints_the_same_text()
    {
        var json = await CliProcess.RunAsync(["describe", "--json", "--max-new-tokens", "8"]);
        Assert.True(json.ExitCode == 0, json.ToString());
        var answer = ParseSingleJsonLine(json);
        Assert.Equal("detail-shapes-mgm", answer.GetProperty("model").GetString());
        Assert.Equal("cpu", answer.GetProperty("device").GetString());
        var text = answer.GetProperty("text").GetString();
        int completion = answer.GetProperty("completion_tokens").GetInt32();
        Assert.True(completion == 8 || (completion is > 0 and < 8 && answer.GetProperty("finish_reason").GetString() == "stop"), json.ToString());
        Assert.False(string.IsNullOrEmpty(text), json.ToString());
        // The bundled example picture went in: its 4 image tokens are part of the prompt.
        Assert.True(answer.GetProperty("prompt_tokens").GetInt32() > 4, json.ToString());
        Assert.Equal(JsonValueKind.Null, answer.GetProperty("image_prompt").ValueKind);
        Assert.True(answer.GetProperty("timing").GetProperty("generate_seconds").GetDouble() > 0, json.ToString());
        Assert.Contains("trained on the Detail Shapes", json.Stderr, StringComparison.Ordinal);
        Assert.DoesNotContain("Loading", json.Stderr, StringComparison.Ordinal); // no progress in JSON mode

        var streamed = await CliProcess.RunAsync(["describe", "--max-new-tokens", "8"]);
        Assert.True(streamed.ExitCode == 0, streamed.ToString());
        Assert.Equal(text, streamed.Stdout.Trim()); // greedy: the same answer, printed as plain text
        Assert.Contains("Loading", streamed.Stderr, StringComparison.Ordinal);
        Assert.Contains($"{completion} new in", streamed.Stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_missing_model_folder_exits_1_naming_the_path()
    {
        var missing = Path.Combine(Path.GetTempPath(), "minigemini-cli-no-such-model", Guid.NewGuid().ToString("N"));
        var run = await CliProcess.RunAsync(["describe", "--model", missing]);
        Assert.True(run.ExitCode == 1, run.ToString());
        Assert.Contains(missing, run.Stderr, StringComparison.Ordinal);
        Assert.Equal("", run.Stdout);
        AssertNoStackTrace(run);
    }

    [Fact]
    public async Task Towers_apart_from_the_model_are_found_through_tower_search_roots()
    {
        // A released checkpoint's config names its towers by paths that do not exist as written; here the model
        // folder is copied alone, so ../clip-vit is missing until --tower-search-root points at the towers.
        var towers = FixtureCatalog.Bundled("mgm-tiny");
        var folder = Directory.CreateTempSubdirectory("minigemini-cli-");
        try
        {
            var model = Path.Combine(folder.FullName, "checkpoints", "mgm-tiny");
            Directory.CreateDirectory(model);
            foreach (var file in Directory.GetFiles(Path.Combine(towers, "model"))) File.Copy(file, Path.Combine(model, Path.GetFileName(file)));

            var missing = await CliProcess.RunAsync(["describe", "--model", model, "--json"]);
            Assert.True(missing.ExitCode == 1, missing.ToString());
            Assert.Contains("'../clip-vit' was not found", missing.Stderr, StringComparison.Ordinal);
            Assert.Contains("--tower-search-root", missing.Stderr, StringComparison.Ordinal);
            AssertNoStackTrace(missing);

            var found = await CliProcess.RunAsync(["describe", "--model", model, "--tower-search-root", towers, "--json", "--max-new-tokens", "2"]);
            Assert.True(found.ExitCode == 0, found.ToString());
            Assert.Equal("mgm-tiny", ParseSingleJsonLine(found).GetProperty("model").GetString());
        }
        finally
        {
            folder.Delete(recursive: true);
        }
    }

    [Fact]
    public async Task A_missing_image_exits_1_naming_the_path_before_loading()
    {
        var missing = Path.Combine(Path.GetTempPath(), $"no-such-image-{Guid.NewGuid():N}.png");
        var run = await CliProcess.RunAsync(["describe", "--image", missing]);
        Assert.True(run.ExitCode == 1, run.ToString());
        Assert.Contains(missing, run.Stderr, StringComparison.Ordinal);
        Assert.DoesNotContain("Loading", run.Stderr, StringComparison.Ordinal);
        AssertNoStackTrace(run);
    }

    [Theory]
    [InlineData("directory")]
    [InlineData("/dev/zero")]
    [InlineData("corrupt")]
    public async Task An_image_that_is_not_one_exits_1_naming_it(string kind)
    {
        var path = kind switch
        {
            "directory" => Path.GetTempPath(),
            "corrupt" => Path.Combine(Path.GetTempPath(), $"corrupt-{Guid.NewGuid():N}.png"),
            _ => kind,
        };
        if (kind == "corrupt") File.WriteAllBytes(path, [0x89, (byte)'P', (byte)'N', (byte)'G', 1, 2, 3]);
        try
        {
            var run = await CliProcess.RunAsync(["describe", "--image", path, "--max-new-tokens", "2"]);
            Assert.True(run.ExitCode == 1, run.ToString());
            Assert.Contains(path.TrimEnd('/'), run.Stderr, StringComparison.Ordinal);
            AssertNoStackTrace(run);
        }
        finally
        {
            if (kind == "corrupt") File.Delete(path);
        }
    }

    [Theory]
    [InlineData("--no-such-option", "--no-such-option")]
    [InlineData("--temperature=-1", "--temperature")]
    [InlineData("--top-p=1.5", "--top-p")]
    [InlineData("--max-new-tokens=0", "--max-new-tokens")]
    [InlineData("--dtype=fp64", "fp64")]
    [InlineData("--device=gpu", "gpu")]
    [InlineData("--template=nope", "nope")]
    public async Task Usage_errors_exit_2_naming_the_option(string argument, string named)
    {
        var run = await CliProcess.RunAsync(["describe", argument]);
        Assert.True(run.ExitCode == 2, run.ToString());
        Assert.Contains(named, run.Stderr, StringComparison.Ordinal);
        Assert.DoesNotContain("Loading", run.Stderr, StringComparison.Ordinal);
        AssertNoStackTrace(run);
    }

    [Fact]
    public async Task Generate_without_a_prompt_is_a_usage_error()
    {
        var run = await CliProcess.RunAsync(["generate"]);
        Assert.True(run.ExitCode == 2, run.ToString());
        Assert.Contains("--prompt", run.Stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Generate_with_two_renderers_is_a_usage_error()
    {
        var run = await CliProcess.RunAsync(["generate", "--prompt", "Draw a red circle.", "--sd-url", "http://127.0.0.1:9/", "--draw-shapes"]);
        Assert.True(run.ExitCode == 2, run.ToString());
        Assert.Contains("--draw-shapes", run.Stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Generate_json_reports_the_image_prompt_field()
    {
        var run = await CliProcess.RunAsync(["generate", "--prompt", "Draw a red fox in the snow.", "--json", "--max-new-tokens", "12"]);
        Assert.True(run.ExitCode == 0, run.ToString());
        var answer = ParseSingleJsonLine(run);
        var imagePrompt = answer.GetProperty("image_prompt");
        Assert.True(imagePrompt.ValueKind is JsonValueKind.Null || imagePrompt.GetString()!.Trim().Length > 0, run.ToString());
        Assert.Equal(JsonValueKind.Null, answer.GetProperty("image_file").ValueKind); // no generator configured
        Assert.InRange(answer.GetProperty("completion_tokens").GetInt32(), 1, 12);
    }

    [Fact]
    public async Task Generate_with_a_txt2img_server_renders_only_a_caption_the_model_wrote()
    {
        byte[] png = Convert.FromBase64String("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==");
        await using var server = new LoopbackServer((_, _) => Task.FromResult(
            (200, JsonSerializer.Serialize(new { images = new[] { Convert.ToBase64String(png) } }), (Dictionary<string, string>?)null)));
        var folder = Directory.CreateTempSubdirectory("minigemini-cli-");
        try
        {
            var output = Path.Combine(folder.FullName, "fox.png");
            var run = await CliProcess.RunAsync(["generate", "--prompt", "Draw a red fox in the snow.", "--sd-url", server.BaseAddress.ToString(),
                "--output", output, "--max-new-tokens", "24"], workingDirectory: folder.FullName);
            Assert.True(run.ExitCode == 0, run.ToString());
            var caption = run.Stdout.Split('\n').FirstOrDefault(l => l.StartsWith("Image prompt: ", StringComparison.Ordinal));
            if (caption is null)
            {
                // A request outside the demo model's task may get no <h>…</h>: nothing to render, said plainly, and the server is never called.
                Assert.Contains("wrote no <h>…</h> caption", run.Stderr, StringComparison.Ordinal);
                Assert.Empty(server.RequestBodies);
                Assert.False(File.Exists(output), run.ToString());
            }
            else
            {
                using var sent = JsonDocument.Parse(Assert.Single(server.RequestBodies));
                Assert.Equal(caption["Image prompt: ".Length..], sent.RootElement.GetProperty("prompt").GetString());
                Assert.Equal(png, await File.ReadAllBytesAsync(output));
            }
        }
        finally
        {
            folder.Delete(recursive: true);
        }
    }

    [Fact]
    public async Task Chat_answers_each_line_with_the_conversation_so_far_and_stops_at_an_empty_line()
    {
        var run = await CliProcess.RunAsync(["chat", "--json", "--max-new-tokens", "4"], stdin: "Hello there.\nWhat is in the picture?\n\nnever read\n");
        Assert.True(run.ExitCode == 0, run.ToString());
        var answers = run.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonDocument.Parse(l).RootElement.Clone()).ToList();
        Assert.True(answers.Count == 2, run.ToString());
        int first = answers[0].GetProperty("prompt_tokens").GetInt32(), second = answers[1].GetProperty("prompt_tokens").GetInt32();
        // The second prompt holds the first exchange and the new question.
        Assert.True(second > first + "What is in the picture?".Length / 4, run.ToString());
    }

    [Fact]
    public async Task Chat_on_the_bundled_model_answers_questions_about_its_example_picture()
    {
        // The example picture: a yellow diamond 4, a red square 5, a blue square 6 and a yellow circle 3.
        var run = await CliProcess.RunAsync(["chat", "--quiet"], stdin: "What digit is at the top right?\nWhat color is the circle?\n");
        Assert.True(run.ExitCode == 0, run.ToString());
        Assert.Equal(["5", "yellow"], run.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries));
    }

    [Fact]
    public async Task Ctrl_C_at_the_chat_prompt_exits_130()
    {
        // A process started with SIGINT ignored (a background job of a non-interactive shell) passes that on to the CLI,
        // which then rightly ignores Ctrl+C, as a nohup'd program does: nothing to test there.
        if (SigIntIgnored()) return;
        using var chat = CliProcess.Start(["chat"]);
        await chat.WaitForStderrAsync("Chat with detail-shapes-mgm");
        chat.Interrupt();
        var run = await chat.WaitAsync(closeInput: false); // stdin stays open: only the signal can end the chat
        Assert.True(run.ExitCode == 130, run.ToString());
        Assert.Contains("Cancelled.", run.Stderr, StringComparison.Ordinal);
        AssertNoStackTrace(run);
    }

    /// <summary>Whether this process ignores SIGINT (bit 2 of SigIgn in /proc/self/status), which its children inherit.</summary>
    static bool SigIntIgnored() =>
        File.ReadLines("/proc/self/status").FirstOrDefault(l => l.StartsWith("SigIgn:", StringComparison.Ordinal)) is { } line
        && (Convert.ToUInt64(line["SigIgn:".Length..].Trim(), 16) & 0x2) != 0;
}
