using Microsoft.Extensions.AI;
using Microsoft.Extensions.DependencyInjection;
using MiniGemini.Hosting;
using MiniGemini.Tests.Pipeline;
using Xunit;

namespace MiniGemini.Tests.Hosting;

public sealed class ServiceCollectionExtensionsTests
{
    [Fact]
    public async Task AddMiniGemini_registers_one_model_and_a_working_chat_client()
    {
        var services = new ServiceCollection();
        services.AddMiniGemini(o =>
        {
            o.ModelPath = TinyModelFixture.ModelFolder;
            o.Device = "cpu";
        });
        await using var provider = services.BuildServiceProvider();
        var client = provider.GetRequiredService<IChatClient>();
        Assert.Same(provider.GetRequiredService<MiniGeminiChatClient>(), client);
        Assert.Same(provider.GetRequiredService<MiniGeminiModel>(), client.GetService<MiniGeminiModel>());
        var response = await client.GetResponseAsync([new ChatMessage(ChatRole.User, "Hello")], new ChatOptions { MaxOutputTokens = 4 });
        Assert.InRange(response.Usage!.OutputTokenCount!.Value, 1, 4);
    }

    [Fact]
    public void A_bad_model_path_fails_when_the_model_is_first_resolved()
    {
        var services = new ServiceCollection();
        services.AddMiniGemini(o => o.ModelPath = "/no/such/model");
        using var provider = services.BuildServiceProvider();
        var e = Assert.ThrowsAny<Exception>(() => provider.GetRequiredService<IChatClient>());
        Assert.Contains("/no/such/model", e.Message);
    }

#pragma warning disable MEAI001 // IImageGenerator is experimental upstream
    [Fact]
    public async Task A_registered_image_generator_renders_the_models_image_prompts()
    {
        var services = new ServiceCollection();
        services.AddMiniGemini(o => o.ModelPath = TinyModelFixture.ModelFolder);
        services.AddMiniGeminiImageGenerator(_ => new MiniGemini.Training.DetailShapes.DetailShapesImageGenerator());
        using var provider = services.BuildServiceProvider();
        var bridge = provider.GetRequiredService<MiniGeminiOptions>().ImageGenerator;
        Assert.NotNull(bridge);
        var image = await bridge.GenerateFromAnswerAsync("<h>a blue square with the digit 2 at the top right</h>");
        Assert.Equal("image/png", image!.MediaType);
    }
#pragma warning restore MEAI001
}
