using MiniGemini.Training.DetailShapes;
using SixLabors.ImageSharp;
using SixLabors.ImageSharp.PixelFormats;
using System.Text.Json;
using Xunit;

namespace MiniGemini.Tests.Training;

/// <summary>Detail Shapes evaluation files (JSON Lines), the set writer and the report.</summary>
public sealed class DetailShapesEvaluationTests : IDisposable
{
    readonly DirectoryInfo _folder = Directory.CreateTempSubdirectory("detail-shapes-");

    public void Dispose() => _folder.Delete(recursive: true);

    string PathOf(string name) => Path.Combine(_folder.FullName, name);

    string WriteLines(params string[] lines)
    {
        var path = PathOf("questions.jsonl");
        File.WriteAllText(path, string.Join("\n", lines) + "\n");
        return path;
    }

    [Fact]
    public void Items_round_trip_with_relative_paths_resolved_against_the_file()
    {
        var absolute = Path.Combine(Path.GetTempPath(), "elsewhere", "picture.png");
        EvaluationItem[] items =
        [
            new("digit", "What digit is on the red circle?", "4", "images/00000.png"),
            new("describe", "Describe the picture.", "There is 1 shape. The top left has a red circle with the digit 4.", absolute),
            new("draw", "Draw a red circle with the digit 4 at the top left.", "<h>a red circle with the digit 4 at the top left</h>"),
            new("color", "What color is the \"circle\"?\tü", "red", "sub dir/a b.png"),
        ];
        var path = PathOf("set.jsonl");
        EvaluationSet.Write(path, items);
        var lines = File.ReadAllLines(path);
        Assert.Equal(4, lines.Length);
        Assert.Equal("{\"image\":\"images/00000.png\",\"question\":\"What digit is on the red circle?\",\"answer\":\"4\",\"type\":\"digit\"}", lines[0]);
        Assert.Contains("\"answer\":\"<h>a red circle with the digit 4 at the top left</h>\"", lines[2], StringComparison.Ordinal);
        Assert.DoesNotContain("image", lines[2], StringComparison.Ordinal);

        var read = EvaluationSet.Read(path);
        Assert.Equal(
            [
                items[0] with { Image = PathOf(Path.Combine("images", "00000.png")) },
                items[1],
                items[2],
                items[3] with { Image = PathOf(Path.Combine("sub dir", "a b.png")) },
            ], read);
    }

    [Theory]
    [InlineData("{\"image\": \"a.png\", \"question\": \"q\", \"answer\": \"4\"", "not valid JSON")]
    [InlineData("[1, 2]", "expected a JSON object, found an array")]
    [InlineData("{\"image\": \"a.png\", \"question\": \"q\", \"answer\": \"4\", \"type\": \"digits\"}", "unknown type 'digits'")]
    [InlineData("{\"image\": \"a.png\", \"question\": \"q\", \"type\": \"digit\"}", "missing \"answer\"")]
    [InlineData("{\"image\": \"a.png\", \"answer\": \"4\", \"type\": \"digit\"}", "missing \"question\"")]
    [InlineData("{\"image\": \"a.png\", \"question\": \"q\", \"answer\": \"4\"}", "missing \"type\"")]
    [InlineData("{\"question\": \"q\", \"answer\": \"4\", \"type\": \"digit\"}", "missing \"image\"")]
    [InlineData("{\"image\": 3, \"question\": \"q\", \"answer\": \"4\", \"type\": \"digit\"}", "\"image\" should be a string, found a number")]
    [InlineData("{\"image\": \"\", \"question\": \"q\", \"answer\": \"4\", \"type\": \"digit\"}", "\"image\" is empty")]
    public void Malformed_lines_are_reported_with_file_and_line(string bad, string problem)
    {
        var good = "{\"image\": \"a.png\", \"question\": \"What digit is at the top left?\", \"answer\": \"4\", \"type\": \"digit_at\"}";
        var path = WriteLines(good, "", bad, good);
        var error = Assert.Throws<EvaluationFileException>(() => EvaluationSet.Read(path));
        Assert.Equal(3, error.Line);
        Assert.Equal(path, error.Path);
        Assert.Contains(problem, error.Problem, StringComparison.Ordinal);
        Assert.StartsWith($"{path}, line 3: ", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Draw_needs_no_image_and_a_numeric_answer_is_read_as_text()
    {
        var path = WriteLines(
            "{\"question\": \"Draw a red circle with the digit 4 at the top left.\", \"answer\": \"<h>a red circle with the digit 4 at the top left</h>\", \"type\": \"draw\"}",
            "{\"image\": \"a.png\", \"question\": \"How many shapes are there?\", \"answer\": 3, \"type\": \"count\", \"extra\": true}");
        var items = EvaluationSet.Read(path);
        Assert.Null(items[0].Image);
        Assert.Equal("3", items[1].Answer);
    }

    [Fact]
    public void Missing_files_and_images_are_named()
    {
        var missing = PathOf("nope.jsonl");
        var error = Assert.Throws<FileNotFoundException>(() => EvaluationSet.Read(missing));
        Assert.Contains(missing, error.Message, StringComparison.Ordinal);

        var path = WriteLines("{\"image\": \"gone.png\", \"question\": \"q\", \"answer\": \"4\", \"type\": \"digit\"}");
        Assert.Single(EvaluationSet.Read(path)); // not checked by default
        var image = Assert.Throws<EvaluationFileException>(() => EvaluationSet.Read(path, checkImages: true));
        Assert.Equal(1, image.Line);
        Assert.Contains(PathOf("gone.png"), image.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void The_set_writer_renders_the_seeded_scenes_and_lists_all_their_questions()
    {
        var questions = EvaluationSetWriter.Write(PathOf("set"), seed: 3, imageCount: 4, drawCount: 2);
        Assert.Equal(PathOf(Path.Combine("set", "questions.jsonl")), questions);
        var items = EvaluationSet.Read(questions, checkImages: true);

        var random = new Random(3);
        var sampler = new SceneSampler(random);
        var expected = new List<EvaluationItem>();
        for (int i = 0; i < 4; i++)
        {
            var scene = sampler.Next();
            var image = PathOf(Path.Combine("set", "images", $"0000{i}.png"));
            Assert.Equal(SceneRenderer.RenderPng(scene), File.ReadAllBytes(image));
            expected.AddRange(QuestionWriter.Questions(scene).Select(q => EvaluationItem.From(q, image)));
        }
        expected.Add(EvaluationItem.From(QuestionWriter.Draw(random), null));
        expected.Add(EvaluationItem.From(QuestionWriter.Draw(random), null));
        Assert.Equal(expected, items);
        using var png = Image.Load<Rgb24>(items[0].Image!);
        Assert.Equal((448, 448), (png.Width, png.Height));

        // The same arguments give the same files.
        var again = EvaluationSetWriter.Write(PathOf("again"), seed: 3, imageCount: 4, drawCount: 2);
        Assert.Equal(File.ReadAllBytes(questions), File.ReadAllBytes(again));
        Assert.Equal(File.ReadAllBytes(PathOf("set/images/00003.png")), File.ReadAllBytes(PathOf("again/images/00003.png")));
    }

    [Fact]
    public void The_report_groups_types_and_scores_describe_per_object()
    {
        var report = new EvaluationReport();
        report.Add("count", true);
        report.Add("shape", true);
        report.Add("shape", false);
        report.Add("color", true);
        report.Add("digit", false);
        report.Add("digit_at", true);
        var describe = new EvaluationItem("describe", "Describe the picture.",
            "There are 2 shapes. The top left has a red circle with the digit 4. The bottom right has a yellow triangle with the digit 0.", "x.png");
        Assert.False(report.Score(describe, "There are 2 shapes. The top left has a red circle with the digit 4."));
        Assert.True(report.Score(new EvaluationItem("draw", "Draw …", "<h>a</h>"), "<H>a</H>."));

        Assert.Equal(new Accuracy(3, 4), report.Coarse);
        Assert.Equal(new Accuracy(1, 2), report.Fine);
        Assert.Equal(new Accuracy(0, 1), report.Describe);
        Assert.Equal(new Accuracy(1, 2), report.DescribeObjects);
        Assert.Equal(new Accuracy(1, 1), report.Draw);
        Assert.Equal(new Accuracy(5, 8), report.Overall);
        Assert.Equal(0.625, report.Overall.Value);
        Assert.Null(new EvaluationReport().Overall.Value);
        Assert.Throws<ArgumentException>(() => report.Add("colour", true));

        using var json = JsonDocument.Parse(report.ToJson());
        var root = json.RootElement;
        Assert.Equal(["overall", "coarse", "fine", "describe", "describe_objects", "draw", "types"], root.EnumerateObject().Select(p => p.Name));
        Assert.Equal(["count", "shape", "color", "digit", "digit_at", "describe", "draw"], root.GetProperty("types").EnumerateObject().Select(p => p.Name));
        Assert.Equal(0.75, root.GetProperty("coarse").GetProperty("accuracy").GetDouble());
        Assert.Equal(2, root.GetProperty("types").GetProperty("shape").GetProperty("total").GetInt32());
        Assert.Equal(8, root.GetProperty("overall").GetProperty("total").GetInt32());

        var table = report.ToTable();
        Assert.Contains("coarse", table, StringComparison.Ordinal);
        Assert.Matches(@"overall\s+5\s+8\s+62\.5%", table);
        Assert.Matches(@"describe_objects\s+1\s+2\s+50\.0%", table);
        Assert.Matches(@"\ndescribe\s+0\s+1\s+0\.0%", table);
        Assert.Matches(@"draw\s+1\s+1\s+100\.0%", table);
        Assert.Matches(@"\ndraw\s+0\s+0\s+-\n", new EvaluationReport().ToTable());
    }
}
