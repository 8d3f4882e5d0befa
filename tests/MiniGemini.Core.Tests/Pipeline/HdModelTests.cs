using MiniGemini.Generation;
using Xunit;

namespace MiniGemini.Tests.Pipeline;

/// <summary>HD models with several images (MGM's own code crashes on batch > 1 in HD).</summary>
public sealed class HdModelTests
{
    [Fact]
    public void Several_images_in_one_prompt_and_a_batch_of_HD_prompts()
    {
        using var model = MiniGeminiBuilder.FromPretrained(TinyModelFixture.HdModelFolder).Build();
        Assert.Equal(80, model.ImageTokensPerImage); // (4 crops + global) × 16 patches
        var image = ImageInput.FromFile(TinyModelFixture.ImagePath);
        var options = new GenerationOptions { MaxNewTokens = 6 };

        var two = MiniGeminiPrompt.Ask("Compare the two pictures.", image, image);
        var answer = model.Generate(two, options);
        Assert.Equal(model.Processor.Tokenize(two).Length - 2 + 2 * 80, answer.PromptTokens);

        var one = MiniGeminiPrompt.Ask("Describe it.", image);
        var batch = model.GenerateBatch([two, one], options);
        Assert.Equal(answer.TokenIds, batch[0].TokenIds);
        Assert.Equal(model.Generate(one, options).TokenIds, batch[1].TokenIds);
    }
}
