namespace MiniGemini.Cli.Commands;

static class Images
{
    /// <summary>An image the user named, checked before the model loads so a typo fails in a second, not after minutes.</summary>
    public static ImageInput[] Given(string? path)
    {
        if (path is null) return [];
        if (!File.Exists(path)) throw new FileNotFoundException($"Image not found: {Path.GetFullPath(path)}", path);
        return [ImageInput.FromFile(path)];
    }
}
