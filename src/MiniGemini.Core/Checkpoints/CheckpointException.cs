namespace MiniGemini.Checkpoints;

/// <summary>A checkpoint or config file could not be read or does not fit the model.</summary>
public class CheckpointException : Exception
{
    /// <summary>Creates the exception.</summary>
    /// <param name="message">What is wrong; names the file and the tensor or key at fault.</param>
    /// <param name="filePath">The file at fault.</param>
    /// <param name="tensorName">The tensor or key at fault, when one is.</param>
    /// <param name="inner">The underlying error, if any.</param>
    public CheckpointException(string message, string? filePath = null, string? tensorName = null, Exception? inner = null)
        : base(message, inner)
    {
        FilePath = filePath;
        TensorName = tensorName;
    }

    /// <summary>The file at fault.</summary>
    public string? FilePath { get; }

    /// <summary>The tensor or key at fault, when one is.</summary>
    public string? TensorName { get; }
}

/// <summary>A checkpoint file is malformed: bad header, lying offsets, wrong sizes, unsupported content.</summary>
public sealed class CheckpointFormatException : CheckpointException
{
    /// <inheritdoc cref="CheckpointException(string, string?, string?, Exception?)"/>
    public CheckpointFormatException(string message, string? filePath = null, string? tensorName = null, Exception? inner = null)
        : base(message, filePath, tensorName, inner) { }
}

/// <summary>A well-formed checkpoint does not match the module it is loaded into (keys or shapes).</summary>
public sealed class CheckpointMismatchException : CheckpointException
{
    /// <summary>Creates the exception from a load report.</summary>
    public CheckpointMismatchException(string message, LoadReport report, string? filePath)
        : base(message, filePath, report.FirstProblemKey) => Report = report;

    /// <summary>Every missing, unexpected and mis-shaped key.</summary>
    public LoadReport Report { get; }
}

/// <summary>A config.json (or similar) is missing, malformed, or lacks a required field.</summary>
public sealed class ModelConfigException : CheckpointException
{
    /// <summary>Creates the exception.</summary>
    public ModelConfigException(string message, string? filePath = null, string? key = null, Exception? inner = null)
        : base(message, filePath, key, inner) { }
}
