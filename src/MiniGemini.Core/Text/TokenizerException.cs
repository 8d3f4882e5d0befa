namespace MiniGemini.Text;

/// <summary>
/// A tokenizer file is missing, corrupt or describes something this library does not support.
/// The message names the file (and the field or value at fault where known).
/// </summary>
public sealed class TokenizerException : Exception
{
    /// <summary>Creates the exception for <paramref name="filePath"/> (may be null when no single file is at fault).</summary>
    public TokenizerException(string message, string? filePath = null, Exception? innerException = null)
        : base(message, innerException) => FilePath = filePath;

    /// <summary>The file at fault, or null when the problem is not tied to one file.</summary>
    public string? FilePath { get; }
}
