namespace MiniGemini.Server;

/// <summary>The server's limits and image generator (configuration section <c>Server</c>).</summary>
public sealed class ServerOptions
{
    /// <summary>Largest request body accepted, in bytes (images come inline as data URIs); default 16 MiB.</summary>
    public long MaxRequestBytes { get; set; } = 16 << 20;

    /// <summary>Largest <c>max_tokens</c> a request may ask for, and what it gets when it asks for none.</summary>
    public int MaxTokens { get; set; } = 256;

    /// <summary>
    /// What draws the captions of draw requests and serves <c>/v1/images/generations</c>: <c>detail-shapes</c> (the
    /// Detail Shapes renderer, for the bundled model), <c>none</c>, or the http(s) address of a txt2img server.
    /// </summary>
    public string? ImageGenerator { get; set; } = "detail-shapes";

    /// <summary>A folder whose images <c>image_url</c> parts may name as <c>file:</c> URIs or paths; none by default.</summary>
    public string? LocalImageRoot { get; set; }
}
