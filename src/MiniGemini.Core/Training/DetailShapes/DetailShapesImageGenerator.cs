using System.Diagnostics.CodeAnalysis;
using System.Text.RegularExpressions;
using Microsoft.Extensions.AI;
using MiniGemini.Generation;

namespace MiniGemini.Training.DetailShapes;

/// <summary>
/// An <see cref="IImageGenerator"/> that draws what a Detail Shapes caption says, with the task's renderer:
/// <c>a red circle with the digit 4 at the top left</c> becomes a 448 × 448 PNG with that object centred in its cell.
/// With it, a model trained on the task answers a draw request with a picture end to end (prompt → <c>&lt;h&gt;…&lt;/h&gt;</c>
/// → image) without a diffusion server; hand it to <see cref="Txt2ImgBridge(IImageGenerator, Txt2ImgRequest?)"/>.
/// </summary>
/// <remarks>The picture is always the task's size; <see cref="ImageGenerationOptions.ImageSize"/> is not used.</remarks>
[Experimental("MEAI001")]
public sealed partial class DetailShapesImageGenerator : IImageGenerator
{
    /// <summary>Side of the object drawn (the middle of the spec's 110–160).</summary>
    public const int ObjectSize = 136;

    [GeneratedRegex(@"^\s*a (?<color>\w+) (?<shape>\w+) with the digit (?<digit>\d) at the (?<cell>\w+ \w+)\.?\s*$", RegexOptions.IgnoreCase | RegexOptions.CultureInvariant)]
    private static partial Regex CaptionPattern();

    /// <summary>The scene a caption describes.</summary>
    /// <exception cref="ImageGenerationException">The caption is not of the form <c>a {color} {shape} with the digit {d} at the {position}</c> with names of the task.</exception>
    internal static Scene SceneOf(string caption)
    {
        ArgumentNullException.ThrowIfNull(caption);
        var match = CaptionPattern().Match(caption);
        if (!match.Success
            || !ShapeColor.TryParse(match.Groups["color"].Value.ToLowerInvariant(), out var color)
            || !ShapeKinds.TryParse(match.Groups["shape"].Value.ToLowerInvariant(), out var shape)
            || !Cell.TryParse(match.Groups["cell"].Value.ToLowerInvariant(), out var cell))
            throw new ImageGenerationException(
                $"'{caption}' is not a Detail Shapes caption: expected 'a {{color}} {{shape}} with the digit {{0-9}} at the {{position}}' " +
                $"with a colour of {string.Join("/", ShapeColor.All.Select(c => c.Name))}, a shape of {string.Join("/", ShapeKinds.All.Select(s => s.Name()))} " +
                $"and a position of {string.Join("/", Cell.All.Select(c => c.Name))}.");
        int digit = match.Groups["digit"].Value[0] - '0';
        return new Scene(DetailShapesSpec.Backgrounds[0], [SceneObject.InCell(cell, shape, color, digit, ObjectSize)]);
    }

    /// <inheritdoc/>
    /// <exception cref="ImageGenerationException">The prompt is not a Detail Shapes caption (see <see cref="SceneOf"/>).</exception>
    public Task<ImageGenerationResponse> GenerateAsync(ImageGenerationRequest request, ImageGenerationOptions? options = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(request);
        cancellationToken.ThrowIfCancellationRequested();
        var png = SceneRenderer.RenderPng(SceneOf(request.Prompt ?? ""));
        int count = Math.Max(1, options?.Count ?? 1);
        var contents = Enumerable.Range(0, count).Select(_ => (AIContent)new DataContent(png, "image/png")).ToList();
        return Task.FromResult(new ImageGenerationResponse(contents));
    }

    /// <inheritdoc/>
    public object? GetService(Type serviceType, object? serviceKey = null)
    {
        ArgumentNullException.ThrowIfNull(serviceType);
        return serviceKey is null && serviceType.IsInstanceOfType(this) ? this : null;
    }

    /// <inheritdoc/>
    public void Dispose()
    {
    }
}
