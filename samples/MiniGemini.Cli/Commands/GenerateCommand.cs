
namespace MiniGemini.Cli.Commands;

/// <summary>
/// <c>generate</c>: Mini-Gemini's image-generation request. The model answers with a diffusion prompt inside
/// <c>&lt;h&gt;…&lt;/h&gt;</c>; with <c>--sd-url</c> a txt2img server renders it, with <c>--draw-shapes</c> the Detail Shapes
/// renderer does, and the picture is saved.
/// </summary>
static class GenerateCommand
{
    public static async Task<int> RunAsync(CommonSettings settings, string request, string? imagePath, Uri? sdUrl, bool drawShapes, string? output,
        CancellationToken cancellationToken)
    {
        var images = Images.Given(imagePath);
        if (sdUrl is not null && drawShapes) return ErrorReport.UsageError("--sd-url and --draw-shapes both render the caption: choose one.");
        if (sdUrl is null && !drawShapes && output is not null) settings.Note("--output is ignored without --sd-url or --draw-shapes: nothing is rendered.");
        using var client = sdUrl is null ? null : new Txt2ImgClient(new Txt2ImgClientOptions { BaseAddress = sdUrl });
        var defaults = new Txt2ImgRequest { Prompt = "-", Seed = settings.Generation.Seed };
#pragma warning disable MEAI001 // IImageGenerator is experimental in Microsoft.Extensions.AI
        using var shapes = drawShapes ? new MiniGemini.Training.DetailShapes.DetailShapesImageGenerator() : null;
        var bridge = client is not null ? new Txt2ImgBridge(client, defaults) : shapes is not null ? new Txt2ImgBridge(shapes, defaults) : null;
#pragma warning restore MEAI001

        using var session = await ModelSession.LoadAsync(settings, bridge, cancellationToken);
        var prompt = new MiniGeminiPrompt { Turns = [ChatTurn.User(request, images)], GenerateImage = true };
        var answer = await new Answerer(session, settings).AnswerAsync(prompt, cancellationToken);
        var response = answer.Response;

        string? saved = null;
        if (response.Image is { } image)
        {
            saved = Path.GetFullPath(output ?? "generated" + ExtensionOf(image.MediaType));
            await File.WriteAllBytesAsync(saved, image.Data.ToArray(), cancellationToken);
        }

        if (settings.Json)
        {
            AnswerReport.From(session, answer, saved).Print();
            return 0;
        }
        settings.Note(answer.Summary());
        if (response.ImagePrompt is null)
            settings.Note("The model wrote no <h>…</h> caption, so there is no image prompt to render.");
        else
        {
            Console.Out.WriteLine($"Image prompt: {response.ImagePrompt}");
            if (saved is not null) Console.Out.WriteLine($"Image saved: {saved}");
            else settings.Note("No image generator configured: pass --sd-url with the address of a txt2img server (or --draw-shapes for a Detail Shapes model) to render it.");
        }
        return 0;
    }

    static string ExtensionOf(string mediaType) => mediaType switch
    {
        "image/jpeg" => ".jpg",
        "image/webp" => ".webp",
        "image/png" => ".png",
        _ => ".bin",
    };
}
