using System.Diagnostics.CodeAnalysis;
using Microsoft.Extensions.AI;
using MiniGemini.Generation;

namespace MiniGemini;

/// <summary>
/// Hands the diffusion prompt that Mini-Gemini writes inside <c>&lt;h&gt;…&lt;/h&gt;</c> to an image generator: a
/// Stable Diffusion web server through <see cref="Txt2ImgClient"/>, or any Microsoft.Extensions.AI
/// <see cref="IImageGenerator"/> (an experimental abstraction, MEAI001). MGM used SDXL base 1.0 with its fixed negative
/// prompt; <see cref="Txt2ImgRequest"/> carries those defaults.
/// </summary>
public sealed class Txt2ImgBridge
{
    readonly Func<Txt2ImgRequest, CancellationToken, Task<GeneratedImage>> _generate;

    /// <summary>Uses a txt2img web server.</summary>
    public Txt2ImgBridge(Txt2ImgClient client, Txt2ImgRequest? defaults = null)
    {
        ArgumentNullException.ThrowIfNull(client);
        Defaults = defaults ?? new Txt2ImgRequest { Prompt = "-" };
        _generate = client.GenerateAsync;
    }

    /// <summary>
    /// Uses a Microsoft.Extensions.AI image generator. The negative prompt, steps, guidance and seed travel in
    /// <see cref="ImageGenerationOptions.AdditionalProperties"/> (<c>negative_prompt</c>, <c>steps</c>, <c>guidance_scale</c>,
    /// <c>seed</c>), since the abstraction has no fields for them.
    /// </summary>
    [Experimental("MEAI001")]
    public Txt2ImgBridge(IImageGenerator generator, Txt2ImgRequest? defaults = null)
    {
        ArgumentNullException.ThrowIfNull(generator);
        Defaults = defaults ?? new Txt2ImgRequest { Prompt = "-" };
        _generate = (request, ct) => ImageGeneratorAdapter.GenerateAsync(generator, request, ct);
    }

    /// <summary>Size, steps, guidance, seed and negative prompt used for every image (the prompt is replaced).</summary>
    public Txt2ImgRequest Defaults { get; }

    /// <summary>Renders <paramref name="prompt"/> with the bridge's defaults.</summary>
    public Task<GeneratedImage> GenerateAsync(string prompt, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(prompt);
        return _generate(Defaults with { Prompt = prompt }, cancellationToken);
    }

    /// <summary>
    /// Renders the caption of a model answer (its last complete <c>&lt;h&gt;…&lt;/h&gt;</c> pair, see
    /// <see cref="ImageCaption.Extract"/>); null when the answer has none, as small models often don't write one.
    /// </summary>
    public async Task<GeneratedImage?> GenerateFromAnswerAsync(string answer, CancellationToken cancellationToken = default)
    {
        var caption = ImageCaption.Extract(answer);
        return caption is null ? null : await GenerateAsync(caption, cancellationToken).ConfigureAwait(false);
    }
}

[Experimental("MEAI001")]
file static class ImageGeneratorAdapter
{
    public static async Task<GeneratedImage> GenerateAsync(IImageGenerator generator, Txt2ImgRequest request, CancellationToken ct)
    {
        var options = new ImageGenerationOptions
        {
            Count = 1,
            ImageSize = new System.Drawing.Size(request.Width, request.Height),
            ResponseFormat = ImageGenerationResponseFormat.Data,
            AdditionalProperties = new AdditionalPropertiesDictionary
            {
                ["negative_prompt"] = request.NegativePrompt,
                ["steps"] = request.Steps,
                ["guidance_scale"] = request.GuidanceScale,
            },
        };
        if (request.Seed is { } seed) options.AdditionalProperties["seed"] = seed;
        ImageGenerationResponse response;
        try
        {
            response = await generator.GenerateAsync(new ImageGenerationRequest(request.Prompt), options, ct).ConfigureAwait(false);
        }
        catch (Exception e) when (e is not OperationCanceledException and not ImageGenerationException)
        {
            throw new ImageGenerationException($"The image generator failed: {e.Message}", inner: e);
        }
        var image = response.Contents.OfType<DataContent>().FirstOrDefault(c => c.HasTopLevelMediaType("image"))
            ?? throw new ImageGenerationException("The image generator returned no image data.");
        return new GeneratedImage(image.Data, image.MediaType, request.Prompt);
    }
}
