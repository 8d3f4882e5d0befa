using Microsoft.Extensions.AI;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Logging;

namespace MiniGemini.Hosting;

/// <summary>Registers Mini-Gemini with a service collection.</summary>
public static class ServiceCollectionExtensions
{
    /// <summary>
    /// Registers a singleton <see cref="MiniGeminiModel"/> built from the configured <see cref="MiniGeminiOptions"/> (loaded
    /// on first use; an <see cref="ILoggerFactory"/> from the container is used when the options have none), and a
    /// singleton <see cref="MiniGeminiChatClient"/>, also exposed as <see cref="IChatClient"/>. Wrap it with
    /// Microsoft.Extensions.AI's pipeline as usual, e.g.
    /// <c>services.AddChatClient(sp => sp.GetRequiredService&lt;MiniGeminiChatClient&gt;()).UseLogging()</c>.
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
            return options;
        });
        services.TryAddSingleton(sp => MiniGeminiBuilder.FromOptions(sp.GetRequiredService<MiniGeminiOptions>()).Build());
        services.TryAddSingleton(sp => new MiniGeminiChatClient(sp.GetRequiredService<MiniGeminiModel>()));
        services.TryAddSingleton<IChatClient>(sp => sp.GetRequiredService<MiniGeminiChatClient>());
        return services;
    }
}
