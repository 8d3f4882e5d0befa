using System.Text.Json;
using System.Text.Json.Serialization;

namespace MiniGemini.Cli;

/// <summary>The <c>--json</c> output: one object per answer, on one line.</summary>
sealed record AnswerReport
{
    public required string Model { get; init; }
    public required string Device { get; init; }
    public required string Precision { get; init; }
    public required string Template { get; init; }
    public required string Text { get; init; }
    public required int PromptTokens { get; init; }
    public required int CompletionTokens { get; init; }
    public required string FinishReason { get; init; }
    public string? ImagePrompt { get; init; }
    public string? ImageFile { get; init; }
    public required TimingReport Timing { get; init; }

    public static AnswerReport From(ModelSession session, Answer answer, string? imageFile = null) => new()
    {
        Model = session.Model.Name,
        Device = session.Model.Device,
        Precision = session.Model.Precision.ToString(),
        Template = session.Model.Template.Name,
        Text = answer.Response.Text,
        PromptTokens = answer.Response.PromptTokens,
        CompletionTokens = answer.Response.CompletionTokens,
        FinishReason = answer.Response.FinishReason.ToString().ToLowerInvariant(),
        ImagePrompt = answer.Response.ImagePrompt,
        ImageFile = imageFile,
        Timing = new TimingReport(
            Math.Round(session.LoadTime.TotalSeconds, 3),
            Math.Round(answer.Elapsed.TotalSeconds, 3),
            Math.Round(answer.TokensPerSecond, 2)),
    };

    public void Print() => Console.Out.WriteLine(JsonSerializer.Serialize(this, Options));

    static readonly JsonSerializerOptions Options = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        DefaultIgnoreCondition = JsonIgnoreCondition.Never,
    };
}

/// <summary>Seconds spent loading and answering.</summary>
sealed record TimingReport(double LoadSeconds, double GenerateSeconds, double TokensPerSecond);
