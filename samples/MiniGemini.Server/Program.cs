using Microsoft.Extensions.AI;
using MiniGemini;
using MiniGemini.Hosting;
using MiniGemini.Server;
using MiniGemini.Training.DetailShapes;

// An OpenAI-style server for a Mini-Gemini model: POST /v1/chat/completions (text and image_url parts, streaming as
// server-sent events), POST /v1/images/generations, GET /v1/models, GET /health. Without configuration it serves the
// bundled demo model (trained on Detail Shapes) and draws its captions with the Detail Shapes renderer.
//   dotnet run --project samples/MiniGemini.Server -- --urls http://127.0.0.1:5000
//   dotnet run --project samples/MiniGemini.Server -- --MiniGemini:ModelPath path/to/MGM-7B --MiniGemini:TowerSearchRoots:0 path/to/model_zoo/OpenAI
var builder = WebApplication.CreateBuilder(args);
builder.Services.Configure<ServerOptions>(builder.Configuration.GetSection("Server"));
builder.Services.ConfigureHttpJsonOptions(o => o.SerializerOptions.Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping);
builder.Services.AddMiniGemini(builder.Configuration.GetSection("MiniGemini")).UseLogging();
builder.Services.PostConfigure<MiniGeminiOptions>(o => o.ModelPath ??= Path.Combine(AppContext.BaseDirectory, "default-model", "detail-shapes-mgm"));
#pragma warning disable MEAI001 // IImageGenerator is experimental upstream
if (ImageGeneratorFor(builder.Configuration["Server:ImageGenerator"] ?? new ServerOptions().ImageGenerator) is { } generator) builder.Services.AddMiniGeminiImageGenerator(_ => generator);
#pragma warning restore MEAI001

var app = builder.Build();
app.UseDefaultFiles();
app.UseStaticFiles();
var model = app.Services.GetRequiredService<MiniGeminiModel>(); // loaded at start: a bad model folder stops the server here, named
app.Logger.LogInformation("Serving {Model} ({Tokens} image tokens per image, context {Context})", model.Name, model.ImageTokensPerImage, model.ContextLength);

app.MapGet("/health", () => Results.Json(new { status = "ok", model = model.Name }));
app.MapGet("/v1/models", () => Results.Json(new ModelList([new ModelCard(model.Name, 0, "minigemini")])));
app.MapPost("/v1/chat/completions", ChatCompletions.Handle);
app.MapPost("/v1/images/generations", ImageGenerations.Handle);
app.Run();

#pragma warning disable MEAI001
static IImageGenerator? ImageGeneratorFor(string? setting) => setting switch
{
    null or "" or "none" => null,
    "detail-shapes" => new DetailShapesImageGenerator(),
    _ when Uri.TryCreate(setting, UriKind.Absolute, out var uri) && uri.Scheme is "http" or "https" =>
        new Txt2ImgClient(new Txt2ImgClientOptions { BaseAddress = uri }),
    _ => throw new InvalidOperationException($"Server:ImageGenerator '{setting}' is not 'detail-shapes', 'none' or the http(s) address of a txt2img server."),
};
#pragma warning restore MEAI001

/// <summary>The server's entry point (public for WebApplicationFactory in tests).</summary>
public partial class Program;
