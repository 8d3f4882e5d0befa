using System.Diagnostics.CodeAnalysis;
using Microsoft.Extensions.AI;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using MiniGemini.Generation;

namespace MiniGemini.Hosting;

/// <summary>
/// Registers a Mini-Gemini model as the container's <see cref="IChatClient"/>, the way Microsoft.Extensions.AI's
/// <c>AddChatClient</c> does: the returned <see cref="ChatClientBuilder"/> adds middleware
/// (<c>.UseLogging().UseOpenTelemetry()</c>), and <see cref="IChatClient"/> is registered once, as that pipeline. The
/// model itself is registered as <see cref="MiniGeminiModel"/> (keyed for the keyed variants).
/// </summary>
/// <remarks>
/// The model is a singleton built on first use from <see cref="MiniGeminiOptions"/> as the options pattern gives them
/// (the <c>configure</c> delegate, a bound <see cref="IConfiguration"/> section, and any
/// <c>services.Configure&lt;MiniGeminiOptions&gt;(…)</c>, in registration order; keyed registrations use the options
/// named after their key). The container's <see cref="ILoggerFactory"/> and <see cref="IImageGenerator"/> (keyed
/// first) are used when the options name none. The container disposes the model.
/// </remarks>
public static class ServiceCollectionExtensions
{
    /// <summary>Registers the model, configured by <paramref name="configure"/> (and any other configuration of <see cref="MiniGeminiOptions"/>).</summary>
    public static ChatClientBuilder AddMiniGemini(this IServiceCollection services, Action<MiniGeminiOptions>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(services);
        var options = services.AddOptions<MiniGeminiOptions>();
        if (configure is not null) options.Configure(configure);
        return Register(services, null);
    }

    /// <summary>Registers the model with options bound from <paramref name="configuration"/> (e.g. <c>builder.Configuration.GetSection("MiniGemini")</c>).</summary>
    public static ChatClientBuilder AddMiniGemini(this IServiceCollection services, IConfiguration configuration)
    {
        ArgumentNullException.ThrowIfNull(services);
        ArgumentNullException.ThrowIfNull(configuration);
        services.AddOptions<MiniGeminiOptions>().Bind(configuration);
        return Register(services, null);
    }

    /// <summary>
    /// Registers a model as the keyed <see cref="IChatClient"/> <paramref name="serviceKey"/> (and a keyed
    /// <see cref="MiniGeminiModel"/>), configured by <paramref name="configure"/> and the options named <paramref name="serviceKey"/>.
    /// </summary>
    public static ChatClientBuilder AddKeyedMiniGemini(this IServiceCollection services, string serviceKey, Action<MiniGeminiOptions>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(services);
        ArgumentException.ThrowIfNullOrEmpty(serviceKey);
        var options = services.AddOptions<MiniGeminiOptions>(serviceKey);
        if (configure is not null) options.Configure(configure);
        return Register(services, serviceKey);
    }

    /// <summary>Registers a model as the keyed <see cref="IChatClient"/> <paramref name="serviceKey"/>, with options bound from <paramref name="configuration"/>.</summary>
    public static ChatClientBuilder AddKeyedMiniGemini(this IServiceCollection services, string serviceKey, IConfiguration configuration)
    {
        ArgumentNullException.ThrowIfNull(services);
        ArgumentException.ThrowIfNullOrEmpty(serviceKey);
        ArgumentNullException.ThrowIfNull(configuration);
        services.AddOptions<MiniGeminiOptions>(serviceKey).Bind(configuration);
        return Register(services, serviceKey);
    }

    /// <summary>
    /// Registers the <see cref="IImageGenerator"/> that renders the diffusion prompts the model writes (a
    /// <see cref="Txt2ImgClient"/>, the Detail Shapes renderer, or any other); the chat client then returns the picture
    /// as <see cref="DataContent"/> beside the caption. Keyed models look for a generator with their key first.
    /// </summary>
    [Experimental("MEAI001")]
    public static IServiceCollection AddMiniGeminiImageGenerator(this IServiceCollection services, Func<IServiceProvider, IImageGenerator> factory)
    {
        ArgumentNullException.ThrowIfNull(services);
        ArgumentNullException.ThrowIfNull(factory);
        services.TryAddSingleton(factory);
        return services;
    }

    static ChatClientBuilder Register(IServiceCollection services, string? key)
    {
        if (key is null)
        {
            services.TryAddSingleton(sp => Build(sp, Options.DefaultName, null));
            return services.AddChatClient(sp => new MiniGeminiChatClient(sp.GetRequiredService<MiniGeminiModel>()));
        }
        services.TryAddKeyedSingleton(key, (sp, _) => Build(sp, key, key));
        return services.AddKeyedChatClient(key, sp => new MiniGeminiChatClient(sp.GetRequiredKeyedService<MiniGeminiModel>(key)));
    }

    static MiniGeminiModel Build(IServiceProvider services, string optionsName, string? key)
    {
        var options = services.GetRequiredService<IOptionsMonitor<MiniGeminiOptions>>().Get(optionsName);
        var builder = MiniGeminiBuilder.FromOptions(options);
        if (options.LoggerFactory is null && services.GetService<ILoggerFactory>() is { } loggers) builder.WithLogger(loggers);
        if (options.ImageGenerator is null && ImageGenerator(services, key) is { } generator) builder.WithImageGenerator(generator);
        return builder.Build();
    }

    [SuppressMessage("Usage", "MEAI001", Justification = "IImageGenerator is experimental upstream; the bridge is how the model uses one.")]
    static Txt2ImgBridge? ImageGenerator(IServiceProvider services, string? key)
    {
#pragma warning disable MEAI001
        var generator = (key is null ? null : services.GetKeyedService<IImageGenerator>(key)) ?? services.GetService<IImageGenerator>();
        return generator is null ? null : new Txt2ImgBridge(generator);
#pragma warning restore MEAI001
    }
}
