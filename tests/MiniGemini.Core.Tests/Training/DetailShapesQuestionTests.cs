using MiniGemini.Training.DetailShapes;
using SixLabors.ImageSharp.PixelFormats;
using Xunit;

namespace MiniGemini.Tests.Training;

/// <summary>Which questions a Detail Shapes scene gets, their exact answers, and how answers are scored.</summary>
public sealed class DetailShapesQuestionTests
{
    static readonly Rgb24 Background = new(210, 220, 230);

    static Scene ThreeObjects() => new(Background,
    [
        // Given out of order: the scene keeps reading order.
        SceneObject.InCell(Cell.BottomRight, ShapeKind.Triangle, ShapeColor.Yellow, 0, 120),
        SceneObject.InCell(Cell.TopLeft, ShapeKind.Circle, ShapeColor.Red, 4, 130),
        SceneObject.InCell(Cell.TopRight, ShapeKind.Circle, ShapeColor.Blue, 7, 140),
    ]);

    static TaskQuestion[] OfType(IEnumerable<TaskQuestion> questions, string type) => questions.Where(q => q.Type == type).ToArray();

    [Fact]
    public void Describe_text_is_exact_in_reading_order()
    {
        Assert.Equal(
            "There are 3 shapes. The top left has a red circle with the digit 4. The top right has a blue circle with the digit 7. " +
            "The bottom right has a yellow triangle with the digit 0.",
            QuestionWriter.Describe(ThreeObjects()));
        var one = new Scene(Background, [SceneObject.InCell(Cell.BottomLeft, ShapeKind.Diamond, ShapeColor.Green, 9, 110)]);
        Assert.Equal("There is 1 shape. The bottom left has a green diamond with the digit 9.", QuestionWriter.Describe(one));
    }

    [Fact]
    public void A_scene_gets_every_question_the_spec_allows_and_no_other()
    {
        var questions = QuestionWriter.Questions(ThreeObjects());
        Assert.Equal(new TaskQuestion("count", "How many shapes are there?", "3"), Assert.Single(OfType(questions, "count")));
        Assert.Equal(
            [
                new TaskQuestion("shape", "What shape is at the top left?", "circle", Cell.TopLeft),
                new TaskQuestion("shape", "What shape is at the top right?", "circle", Cell.TopRight),
                new TaskQuestion("shape", "What shape is at the bottom right?", "triangle", Cell.BottomRight),
            ], OfType(questions, "shape"));
        // Two circles: no "What color is the circle?".
        Assert.Equal([new TaskQuestion("color", "What color is the triangle?", "yellow", Cell.BottomRight)], OfType(questions, "color"));
        Assert.Equal(
            [
                new TaskQuestion("digit", "What digit is on the red circle?", "4", Cell.TopLeft),
                new TaskQuestion("digit", "What digit is on the blue circle?", "7", Cell.TopRight),
                new TaskQuestion("digit", "What digit is on the yellow triangle?", "0", Cell.BottomRight),
            ], OfType(questions, "digit"));
        Assert.Equal(
            [
                new TaskQuestion("digit_at", "What digit is at the top left?", "4", Cell.TopLeft),
                new TaskQuestion("digit_at", "What digit is at the top right?", "7", Cell.TopRight),
                new TaskQuestion("digit_at", "What digit is at the bottom right?", "0", Cell.BottomRight),
            ], OfType(questions, "digit_at"));
        Assert.Equal("Describe the picture.", Assert.Single(OfType(questions, "describe")).Question);
        Assert.Empty(OfType(questions, "draw"));
        Assert.Equal(1 + 3 + 1 + 3 + 3 + 1, questions.Count);
    }

    [Fact]
    public void No_digit_question_when_colour_and_shape_repeat()
    {
        var scene = new Scene(Background,
        [
            SceneObject.InCell(Cell.TopLeft, ShapeKind.Square, ShapeColor.Orange, 1, 120),
            SceneObject.InCell(Cell.BottomLeft, ShapeKind.Square, ShapeColor.Orange, 2, 120),
            SceneObject.InCell(Cell.BottomRight, ShapeKind.Square, ShapeColor.Purple, 3, 120),
        ]);
        var questions = QuestionWriter.Questions(scene);
        Assert.Empty(OfType(questions, "color")); // three squares
        Assert.Equal([new TaskQuestion("digit", "What digit is on the purple square?", "3", Cell.BottomRight)], OfType(questions, "digit"));
        Assert.Equal(3, OfType(questions, "digit_at").Length);
    }

    [Fact]
    public void Draw_requests_name_the_object_and_expect_its_caption()
    {
        var draw = QuestionWriter.Draw(ShapeColor.Purple, ShapeKind.Square, 3, Cell.TopRight);
        Assert.Equal(new TaskQuestion("draw", "Draw a purple square with the digit 3 at the top right.",
            "<h>a purple square with the digit 3 at the top right</h>"), draw);
        var first = Enumerable.Range(0, 20).Select(_ => QuestionWriter.Draw(new Random(9))).Distinct();
        Assert.Single(first);
        var random = new Random(9);
        var many = Enumerable.Range(0, 200).Select(_ => QuestionWriter.Draw(random)).ToList();
        Assert.True(many.Distinct().Count() > 100);
        Assert.All(many, q => Assert.Matches(@"^Draw a [a-z]+ [a-z]+ with the digit [0-9] at the (top|bottom) (left|right)\.$", q.Question));
        Assert.All(many, q => Assert.Equal("<h>" + q.Question["Draw ".Length..^1] + "</h>", q.Answer));
    }

    [Theory]
    [InlineData("red", "red", true)]
    [InlineData("red", "  Red.  ", true)]
    [InlineData("red", "RED\n", true)]
    [InlineData("red", "red..", false)]
    [InlineData("red", "red .", false)]
    [InlineData("4", "4.", true)]
    [InlineData("4", "four", false)]
    [InlineData("circle", "circles", false)]
    [InlineData("There is 1 shape. The top left has a red circle with the digit 4.", "there is 1 shape. the top left has a red circle with the digit 4", true)]
    [InlineData("<h>a red circle with the digit 4 at the top left</h>", " <h>A red circle with the digit 4 at the top left</h>", true)]
    public void Answers_are_compared_after_trimming_lower_casing_and_removing_one_period(string expected, string predicted, bool correct)
    {
        Assert.Equal(correct, AnswerScorer.IsCorrect(expected, predicted));
    }

    [Fact]
    public void Normalize_removes_one_trailing_period_only()
    {
        Assert.Equal("red", AnswerScorer.Normalize(" Red. "));
        Assert.Equal("red.", AnswerScorer.Normalize("red.."));
        Assert.Equal("", AnswerScorer.Normalize("."));
        Assert.Equal("", AnswerScorer.Normalize(null));
    }

    [Fact]
    public void Describe_is_scored_per_object_tolerating_missing_sentences()
    {
        var expected = QuestionWriter.Describe(ThreeObjects());
        Assert.Equal(new DescribeScore(3, 3), AnswerScorer.ScoreDescription(expected, expected));
        // Right top left, wrong digit at top right, bottom right missing.
        Assert.Equal(new DescribeScore(1, 3), AnswerScorer.ScoreDescription(expected,
            "There are 3 shapes. The top left has a red circle with the digit 4. The top right has a blue circle with the digit 1."));
        // Order, case and "an" do not matter; the first sentence about a position counts; the count sentence is not an object.
        Assert.Equal(new DescribeScore(2, 3), AnswerScorer.ScoreDescription(expected,
            "There are 2 shapes. the bottom right has an Yellow triangle with the digit 0. THE TOP LEFT HAS A RED CIRCLE WITH THE DIGIT 4. " +
            "The top right has a blue square with the digit 7. The top right has a blue circle with the digit 7."));
        Assert.Equal(new DescribeScore(0, 3), AnswerScorer.ScoreDescription(expected, "I see shapes."));
        Assert.Equal(new DescribeScore(0, 3), AnswerScorer.ScoreDescription(expected, ""));

        var parsed = AnswerScorer.ParseDescription(expected);
        Assert.Equal(
            [
                new DescribedObject(Cell.TopLeft, "red", "circle", 4),
                new DescribedObject(Cell.TopRight, "blue", "circle", 7),
                new DescribedObject(Cell.BottomRight, "yellow", "triangle", 0),
            ], parsed);
    }

    [Fact]
    public void Names_parse_back()
    {
        foreach (var cell in Cell.All)
        {
            Assert.True(Cell.TryParse(cell.Name.ToUpperInvariant(), out var parsed));
            Assert.Equal(cell, parsed);
            Assert.Equal(cell, Cell.FromIndex(cell.Index));
        }
        Assert.Equal(["top left", "top right", "bottom left", "bottom right"], Cell.All.Select(c => c.Name));
        Assert.Equal(["circle", "square", "triangle", "diamond"], ShapeKinds.All.Select(s => s.Name()));
        Assert.Equal(["red", "green", "blue", "yellow", "purple", "orange"], ShapeColor.All.Select(c => c.Name));
        Assert.True(ShapeKinds.TryParse(" Diamond", out var shape));
        Assert.Equal(ShapeKind.Diamond, shape);
        Assert.False(ShapeColor.TryParse("pink", out _));
        Assert.Throws<ArgumentOutOfRangeException>(() => new Cell(2, 0));
        var circle = SceneObject.InCell(Cell.TopLeft, ShapeKind.Circle, ShapeColor.Red, 9, 120);
        Assert.Throws<ArgumentOutOfRangeException>(() => SceneObject.InCell(Cell.TopLeft, ShapeKind.Circle, ShapeColor.Red, 10, 120));
        Assert.Throws<ArgumentOutOfRangeException>(() => circle with { Digit = -1 });
        Assert.Throws<ArgumentOutOfRangeException>(() => circle with { Size = 0 });
        Assert.Throws<ArgumentOutOfRangeException>(() => circle with { Shape = (ShapeKind)7 });
        Assert.Throws<ArgumentException>(() => new Scene(Background,
            [SceneObject.InCell(Cell.TopLeft, ShapeKind.Circle, ShapeColor.Red, 1, 120), SceneObject.InCell(Cell.TopLeft, ShapeKind.Square, ShapeColor.Red, 2, 120)]));
    }

    [Fact]
    public void The_training_stream_asks_describe_last_or_alone_and_is_a_function_of_the_index()
    {
        var stream = new DetailShapesTraining(seed: 11);
        int withImage = 0, alone = 0;
        for (int i = 0; i < 600; i++)
        {
            var sample = stream.Sample(i);
            Assert.Equal(sample.Exchanges, stream.Sample(i).Exchanges);
            if (sample.Image is null) continue;
            withImage++;
            var at = sample.Exchanges.Select((e, k) => (e, k)).Where(x => x.e.User == QuestionWriter.DescribeQuestion).Select(x => x.k).ToList();
            Assert.True(at.Count <= 1 && (at.Count == 0 || at[0] == sample.Exchanges.Count - 1), $"sample {i}: describe at {string.Join(",", at)} of {sample.Exchanges.Count}");
            if (sample.Exchanges.Count == 1 && at.Count == 1) alone++;
        }
        // As often as any one question is asked first: about one in eleven pictures.
        Assert.InRange(alone / (double)withImage, 0.04, 0.2);
    }

    [Fact]
    public void The_training_stream_never_asks_a_colour_after_a_digit_question_that_names_it()
    {
        var stream = new DetailShapesTraining(seed: 12);
        int colourLater = 0, colourQuestions = 0;
        for (int i = 0; i < 400; i++)
        {
            var users = stream.Sample(i).Exchanges.Select(e => e.User).ToList();
            var firstDigit = users.FindIndex(u => u.StartsWith("What digit is on the ", StringComparison.Ordinal));
            var colours = users.Select((u, k) => (u, k)).Where(x => x.u.StartsWith("What color is the ", StringComparison.Ordinal)).ToList();
            colourQuestions += colours.Count;
            Assert.All(colours, c => Assert.True(firstDigit < 0 || c.k < firstDigit, $"sample {i}: '{c.u}' at turn {c.k}, a digit question at {firstDigit}"));
            if (firstDigit >= 0) colourLater += colours.Count(c => c.k > 0);
        }
        Assert.True(colourQuestions > 300, $"only {colourQuestions} colour questions");
        Assert.True(colourLater > 50, $"only {colourLater} colour questions after the first turn in conversations with a digit question");
    }
}
