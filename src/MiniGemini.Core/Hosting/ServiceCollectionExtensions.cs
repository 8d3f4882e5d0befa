using System.Diagnostics.CodeAnalysis;
using Microsoft.Extensions.AI;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Logging;
using MiniGemini.Generation;

namespace MiniGemini.Hosting;

/// <summary>Registers Mini-Gemini with a service collection.</summary>
public static class ServiceCollectionExtensions
{
    /// <summary>
    /// Registers a singleton <see cref="MiniGeminiModel"/> built from the configured <see cref="MiniGeminiOptions"/> (loaded
    /// on first use; an <see cref="ILoggerFactory"/> from the container is used when the options have none), and a
    /// singleton <see cref="MiniGeminiChatClient"/>, also exposed as <see cref="IChatClient"/>. For a middleware pipeline
    /// (<c>.UseLogging()</c>, <c>.UseOpenTelemetry()</c>), keyed models and options bound from configuration, use
    /// <c>AddMiniGeminiChatClient</c> of the MiniGemini.Hosting package instead, which registers <see cref="IChatClient"/>
    /// once, as the pipeline.
    /// An <see cref="IImageGenerator"/> in the container (see <see cref="AddMiniGeminiImageGenerator"/>) renders the
    /// model's image prompts unless the options name a generator themselves.
    /// </summary>
    public static IServiceCollection AddMiniGemini(this IServiceCollection services, Action<MiniGeminiOptions> configure)
    {
        ArgumentNullException.ThrowIfNull(services);
        ArgumentNullException.ThrowIfNull(configure);
        services.TryAddSingleton(sp =>
        {
            var options = new MiniGeminiOptions();
            configure(options);
            options.LoggerFactory ??= sp.GetService<ILoggerFactory>();
#pragma warning disable MEAI001 // IImageGenerator is experimental upstream
            if (options.ImageGenerator is null && sp.GetService<IImageGenerator>() is { } generator) options.ImageGenerator = new SdxlBridge(generator);
#pragma warning restore MEAI001
            return options;
        });
        services.TryAddSingleton(sp => MiniGeminiBuilder.FromOptions(sp.GetRequiredService<MiniGeminiOptions>()).Build());
        services.TryAddSingleton(sp => new MiniGeminiChatClient(sp.GetRequiredService<MiniGeminiModel>()));
        services.TryAddSingleton<IChatClient>(sp => sp.GetRequiredService<MiniGeminiChatClient>());
        return services;
    }

    /// <summary>
    /// Registers the <see cref="IImageGenerator"/> that renders the diffusion prompts the model writes (a
    /// <see cref="Txt2ImgClient"/>, the Detail Shapes renderer, or any other); the chat client then returns the picture as
    /// <see cref="DataContent"/> beside the caption.
    /// </summary>
    [Experimental("MEAI001")]
    public static IServiceCollection AddMiniGeminiImageGenerator(this IServiceCollection services, Func<IServiceProvider, IImageGenerator> factory)
    {
        ArgumentNullException.ThrowIfNull(services);
        ArgumentNullException.ThrowIfNull(factory);
        services.TryAddSingleton(factory);
        return services;
    }
}
