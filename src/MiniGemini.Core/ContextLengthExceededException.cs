namespace MiniGemini;

/// <summary>
/// A sequence would grow past what the model or its key/value cache can hold (prompt tokens plus new tokens beyond
/// <c>max_position_embeddings</c> or the cache's capacity). Thrown before any work is done.
/// </summary>
public sealed class ContextLengthExceededException : InvalidOperationException
{
    /// <summary>Creates the exception.</summary>
    /// <param name="requested">The sequence length that was asked for.</param>
    /// <param name="limit">The largest length allowed.</param>
    /// <param name="message">What was asked for and which limit it breaks.</param>
    public ContextLengthExceededException(int requested, int limit, string message) : base(message)
    {
        Requested = requested;
        Limit = limit;
    }

    /// <summary>The sequence length that was asked for.</summary>
    public int Requested { get; }

    /// <summary>The largest length allowed.</summary>
    public int Limit { get; }
}
