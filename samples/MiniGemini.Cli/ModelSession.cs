using System.Diagnostics;

namespace MiniGemini.Cli;

/// <summary>A loaded model and how long loading took.</summary>
sealed class ModelSession(MiniGeminiModel model, TimeSpan loadTime) : IDisposable
{
    public MiniGeminiModel Model { get; } = model;

    public TimeSpan LoadTime { get; } = loadTime;

    /// <summary>
    /// Builds the model off the calling thread, so Ctrl+C can abandon a long load (the process then exits; the
    /// half-loaded model goes with it).
    /// </summary>
    public static async Task<ModelSession> LoadAsync(CommonSettings settings, Txt2ImgBridge? imageGenerator, CancellationToken cancellationToken)
    {
        if (settings.IsBundledModel) settings.Note(BundledModel.Notice);
        if (settings.Device != "cpu" && !TorchSharp.torch.cuda.is_available())
            throw new ModelLoadException(
                $"--device {settings.Device}: CUDA is not available. It needs the CLI built with -p:TorchBackend=cuda " +
                "(a CUDA libtorch instead of the CPU one) and an NVIDIA driver; or use --device cpu.");
        var builder = MiniGeminiBuilder.FromPretrained(settings.ModelPath)
            .OnDevice(settings.Device)
            .WithPrecision(settings.Precision)
            .WithTowerSearchRoots([.. settings.TowerSearchRoots]);
        if (settings.Template is { } template) builder.WithTemplate(template);
        if (imageGenerator is not null) builder.WithImageGenerator(imageGenerator);
        if (settings.Verbose) builder.WithLogger(new StderrLoggerFactory());
        // --verbose logs every stage instead.
        var progress = settings.Quiet || settings.Json || settings.Verbose ? null : new LoadProgressBar(interactive: !Console.IsErrorRedirected, cancellationToken);
        if (progress is not null) builder.WithProgress(progress);

        var clock = Stopwatch.StartNew();
        MiniGeminiModel model;
        try
        {
            model = await Task.Run(builder.Build, CancellationToken.None).WaitAsync(cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            progress?.EndLine();
        }
        var session = new ModelSession(model, clock.Elapsed);
        if (!settings.Json)
            settings.Note($"{model.Name} on {model.Device} ({model.Precision}), template {model.Template.Name}, " +
                          $"{model.ImageTokensPerImage} tokens per image, loaded in {session.LoadTime.TotalSeconds:0.0} s.");
        return session;
    }

    public void Dispose() => Model.Dispose();
}
