using Microsoft.Extensions.AI;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using MiniGemini.Hosting;
using MiniGemini.Tests.Cli;
using MiniGemini.Tests.Pipeline;
using Xunit;

namespace MiniGemini.Tests.Hosting;

/// <summary>MiniGemini.Hosting's <c>AddMiniGemini</c>: a ChatClientBuilder, one IChatClient, keyed models, options from configuration.</summary>
public sealed class ServiceCollectionExtensionsTests
{
    static readonly ChatOptions FourTokens = new() { MaxOutputTokens = 4, Temperature = 0 };

    [Fact]
    public async Task The_builder_chains_middleware_and_leaves_one_chat_client_registered()
    {
        var services = new ServiceCollection().AddLogging();
        services.AddMiniGemini(o => o.ModelPath = TinyModelFixture.ModelFolder).UseLogging().UseOpenTelemetry();
        Assert.Single(services, d => d.ServiceType == typeof(IChatClient));
        await using var provider = services.BuildServiceProvider();

        var client = provider.GetRequiredService<IChatClient>();
        Assert.IsNotType<MiniGeminiChatClient>(client); // the pipeline's outer client
        Assert.NotNull(client.GetService<LoggingChatClient>());
        var model = provider.GetRequiredService<MiniGeminiModel>();
        Assert.Same(model, client.GetService<MiniGeminiModel>());
        var response = await client.GetResponseAsync([new ChatMessage(ChatRole.User, "Hello")], FourTokens);
        Assert.Equal(model.Generate(MiniGeminiPrompt.Ask("Hello"), new() { MaxNewTokens = 4 }).Text, response.Text);
    }

    [Fact]
    public void Options_come_from_a_configuration_section_or_from_Configure()
    {
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["MiniGemini:ModelPath"] = TinyModelFixture.ModelFolder,
            ["MiniGemini:Device"] = "cpu",
            ["MiniGemini:Precision"] = "Float32",
            ["MiniGemini:ConversationCacheBytes"] = "0",
            ["MiniGemini:TowerSearchRoots:0"] = "/towers/a",
            ["MiniGemini:MaxImagePixels"] = "1000000",
        }).Build();
        var services = new ServiceCollection();
        services.AddMiniGemini(configuration.GetSection("MiniGemini"));
        using var provider = services.BuildServiceProvider();
        var options = provider.GetRequiredService<Microsoft.Extensions.Options.IOptions<MiniGeminiOptions>>().Value;
        Assert.Equal(["/towers/a"], options.TowerSearchRoots);
        Assert.Equal(0, options.ConversationCacheBytes);
        Assert.Equal(1_000_000, options.MaxImagePixels);
        Assert.Equal("model", provider.GetRequiredService<MiniGeminiModel>().Name);

        // services.Configure<MiniGeminiOptions>(section) is what the options pattern documents: it is honoured too.
        var configured = new ServiceCollection();
        configured.Configure<MiniGeminiOptions>(configuration.GetSection("MiniGemini"));
        configured.AddMiniGemini();
        using var fromConfigure = configured.BuildServiceProvider();
        Assert.Equal("model", fromConfigure.GetRequiredService<IChatClient>().GetService<MiniGeminiModel>()!.Name);
    }

    [Fact]
    public async Task Keyed_chat_clients_each_get_their_own_model_and_options()
    {
        var services = new ServiceCollection();
        services.AddKeyedMiniGemini("tiny", o => o.ModelPath = TinyModelFixture.ModelFolder);
        services.AddKeyedMiniGemini("shapes", o => o.ModelPath = BundledModelTests.ModelFolder).UseLogging();
        services.AddLogging(logging => logging.SetMinimumLevel(LogLevel.Warning));
        Assert.DoesNotContain(services, d => d.ServiceType == typeof(IChatClient) && !d.IsKeyedService);
        await using var provider = services.BuildServiceProvider();

        var tiny = provider.GetRequiredKeyedService<IChatClient>("tiny");
        var shapes = provider.GetRequiredKeyedService<IChatClient>("shapes");
        Assert.Equal("model", tiny.GetService<MiniGeminiModel>()!.Name);
        Assert.Equal("detail-shapes-mgm", shapes.GetService<MiniGeminiModel>()!.Name);
        Assert.Same(provider.GetRequiredKeyedService<MiniGeminiModel>("shapes"), shapes.GetService<MiniGeminiModel>());
        Assert.Null(provider.GetService<IChatClient>());
        var answer = await shapes.GetResponseAsync([new ChatMessage(ChatRole.User, "Draw a red circle with the digit 4 at the top left.")],
            new ChatOptions { MaxOutputTokens = 40, Temperature = 0, AdditionalProperties = new() { [MiniGeminiChatClient.GenerateImageProperty] = true } });
        Assert.Contains("<h>", answer.Text);
    }

    [Fact]
    public void Options_without_a_model_or_with_a_bad_path_fail_on_first_use_naming_the_fault()
    {
        var services = new ServiceCollection();
        services.AddMiniGemini();
        using var provider = services.BuildServiceProvider();
        var e = Assert.Throws<ModelLoadException>(() => provider.GetRequiredService<IChatClient>());
        Assert.Contains("No model", e.Message);

        var bad = new ServiceCollection();
        bad.AddMiniGemini(o => o.ModelPath = "/no/such/model");
        using var badProvider = bad.BuildServiceProvider();
        Assert.Contains("/no/such/model", Assert.ThrowsAny<Exception>(() => badProvider.GetRequiredService<IChatClient>()).Message);
    }

#pragma warning disable MEAI001 // IImageGenerator is experimental upstream
    [Fact]
    public async Task A_registered_image_generator_renders_what_the_model_draws()
    {
        var services = new ServiceCollection();
        services.AddMiniGemini(o => o.ModelPath = BundledModelTests.ModelFolder);
        services.AddMiniGeminiImageGenerator(_ => new MiniGemini.Training.DetailShapes.DetailShapesImageGenerator());
        await using var provider = services.BuildServiceProvider();
        var response = await provider.GetRequiredService<IChatClient>().GetResponseAsync(
            [new ChatMessage(ChatRole.User, "Draw a blue square with the digit 2 at the top right.")],
            new ChatOptions { MaxOutputTokens = 40, Temperature = 0, AdditionalProperties = new() { [MiniGeminiChatClient.GenerateImageProperty] = true } });
        Assert.Contains("<h>", response.Text);
        var picture = Assert.Single(response.Messages.SelectMany(m => m.Contents).OfType<DataContent>());
        Assert.Equal("image/png", picture.MediaType);
    }
#pragma warning restore MEAI001
}
