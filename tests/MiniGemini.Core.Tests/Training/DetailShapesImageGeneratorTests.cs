#pragma warning disable MEAI001 // IImageGenerator is experimental upstream
using MiniGemini.Generation;
using MiniGemini.Training.DetailShapes;
using SixLabors.ImageSharp;
using SixLabors.ImageSharp.PixelFormats;
using Xunit;

namespace MiniGemini.Tests.Training;

/// <summary>The Detail Shapes renderer as an image generator: a caption in, the picture it describes out.</summary>
public sealed class DetailShapesImageGeneratorTests
{
    [Fact]
    public void A_caption_becomes_the_scene_it_describes()
    {
        var scene = DetailShapesImageGenerator.SceneOf("a purple triangle with the digit 7 at the bottom right");
        var only = Assert.Single(scene.Objects);
        Assert.Equal((Cell.BottomRight, ShapeKind.Triangle, ShapeColor.Purple, 7), (only.Cell, only.Shape, only.Color, only.Digit));
        // What the task's questions say about the drawn scene is what the caption said.
        var answers = QuestionWriter.Questions(scene).ToDictionary(q => q.Question, q => q.Answer);
        Assert.Equal("triangle", answers["What shape is at the bottom right?"]);
        Assert.Equal("7", answers["What digit is on the purple triangle?"]);
    }

    [Fact]
    public async Task The_bridge_renders_a_model_answer_with_it_end_to_end()
    {
        using var generator = new DetailShapesImageGenerator();
        var bridge = new Txt2ImgBridge(generator);
        var image = await bridge.GenerateFromAnswerAsync("<h>a red circle with the digit 4 at the top left</h>");

        Assert.NotNull(image);
        Assert.Equal("image/png", image.MediaType);
        using var png = Image.Load<Rgb24>(image.Data.Span);
        Assert.Equal((448, 448), (png.Width, png.Height));
        Assert.Equal(ShapeColor.Red.Fill, png[112, 72]);                      // inside the circle, above the digit
        Assert.Equal(DetailShapesSpec.Backgrounds[0], png[336, 336]);         // the other cells are empty
        Assert.Equal(ShapeColor.Red.Ink, png[112 - 4, 112 - 7]);             // the digit box's top-left pixel: segment f of 4
        Assert.Equal(ShapeColor.Red.Fill, png[112 - 4 + 3, 112 - 7]);        // 4 has no segment a: fill between f and b
    }

    [Theory]
    [InlineData("a red circle")]
    [InlineData("a pink circle with the digit 4 at the top left")]
    [InlineData("a red hexagon with the digit 4 at the top left")]
    [InlineData("a red circle with the digit 12 at the top left")]
    [InlineData("a red circle with the digit 4 at the middle")]
    public async Task A_prompt_that_is_not_a_caption_of_the_task_is_refused_naming_it(string prompt)
    {
        using var generator = new DetailShapesImageGenerator();
        var e = await Assert.ThrowsAsync<ImageGenerationException>(() => generator.GenerateAsync(new Microsoft.Extensions.AI.ImageGenerationRequest(prompt)));
        Assert.Contains(prompt, e.Message);
    }
}
