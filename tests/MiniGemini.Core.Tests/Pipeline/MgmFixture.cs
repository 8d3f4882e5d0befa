using System.Text.Json;
using MiniGemini.Tests.Parity;

namespace MiniGemini.Tests.Pipeline;

/// <summary>An <c>mgm-*</c> fixture folder: <c>model/</c>, <c>case.json</c>, <c>io.safetensors</c>.</summary>
public sealed class MgmFixture
{
    MgmFixture(string folder, JsonElement json)
    {
        Folder = folder;
        Prompt = json.GetProperty("prompt").GetString()!;
        InputIds = json.GetProperty("input_ids_with_image").EnumerateArray().Select(e => e.GetInt32()).ToArray();
        GreedyText = json.TryGetProperty("greedy_text", out var text) ? text.GetString() : null;
        ImageTokenCount = json.TryGetProperty("image_token_count", out var count) ? count.GetInt32() : null;
        ConvMode = json.TryGetProperty("conv_mode", out var mode) ? mode.GetString() : null;
    }

    public static MgmFixture Load(string id)
    {
        var folder = FixtureCatalog.Resolve(id);
        using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(folder, "case.json")));
        return new MgmFixture(folder, doc.RootElement.Clone());
    }

    public string Folder { get; }
    public string ModelFolder => Path.Combine(Folder, "model");
    public string Prompt { get; }
    public int[] InputIds { get; }
    public string? GreedyText { get; }
    public int? ImageTokenCount { get; }
    public string? ConvMode { get; }

    /// <summary>
    /// Builds the fixture's model as a user would: towers named in config.json are found beside the model folder (a
    /// fixture whose embedded CLIP needs its config, which shapes cannot tell, carries a config-only tower folder there).
    /// </summary>
    public MiniGeminiModel Build(Func<MiniGeminiBuilder, MiniGeminiBuilder>? configure = null)
    {
        var builder = MiniGeminiBuilder.FromPretrained(ModelFolder);
        return (configure?.Invoke(builder) ?? builder).Build();
    }
}
