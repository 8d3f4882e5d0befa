namespace MiniGemini.Cli;

/// <summary>Turns a failure into one message on stderr and an exit code: 2 for usage errors, 1 for runtime errors.</summary>
static class ErrorReport
{
    public const int Usage = 2;
    public const int Runtime = 1;

    /// <summary>A usage error found by a command (after parsing): the message and the hint, exit code 2.</summary>
    public static int UsageError(string message)
    {
        Console.Error.WriteLine($"error: {message}");
        Console.Error.WriteLine("Run with --help for the commands and options.");
        return Usage;
    }

    public static int Handle(Exception error, bool verbose)
    {
        var (code, message) = Describe(error);
        Answerer.EndLine();
        Console.Error.WriteLine($"error: {message}");
        if (verbose) Console.Error.WriteLine(error);
        else if (code == Runtime && !IsExpected(error)) Console.Error.WriteLine("Run with --verbose for details.");
        return code;
    }

    static (int Code, string Message) Describe(Exception error) => error switch
    {
        // Prefixed so that what the image server said is not taken for a problem with the model.
        ImageGenerationException => (Runtime, $"image generation failed: {error.Message}"),
        ModelLoadException { Tower: not null } => (Runtime, error.Message +
            "\nOn the command line: --tower-search-root FOLDER, the folder that holds the tower's folder (e.g. model_zoo/OpenAI)."),
        TypeInitializationException or DllNotFoundException when IsNativeLoadFailure(error) =>
            (Runtime, $"TorchSharp's native library could not be loaded ({Innermost(error).Message}). " +
                      "Run scripts/setup.sh, which installs what it needs on Debian 12."),
        _ when IsExpected(error) => (Runtime, error.Message),
        _ => (Runtime, $"{error.GetType().Name}: {error.Message}"),
    };

    /// <summary>Failures the library documents, whose messages name what is at fault.</summary>
    static bool IsExpected(Exception error) => error is MiniGeminiException or FileNotFoundException
        or DirectoryNotFoundException or UnauthorizedAccessException or ArgumentException or IOException;

    static bool IsNativeLoadFailure(Exception error) =>
        Innermost(error) is DllNotFoundException || (error is TypeInitializationException t && t.TypeName?.StartsWith("TorchSharp", StringComparison.Ordinal) == true);

    static Exception Innermost(Exception error)
    {
        while (error.InnerException is { } inner) error = inner;
        return error;
    }
}
