using MiniGemini.Modeling;

namespace MiniGemini.Checkpoints;

/// <summary>Rules shared by the tower loaders.</summary>
internal static class TowerCheckpoint
{
    /// <summary>
    /// A tower file (HF <c>CLIPModel</c>, open_clip) also holds parts MGM does not use, such as a text tower or a
    /// projection head. The loader only reads the tower's own keys, so this checks the rest of the file: every key the
    /// tower does not own must be one that <paramref name="isForeign"/> names. Anything else means the file is not the
    /// model we take it for.
    /// </summary>
    /// <exception cref="ModelLoadException">The file has keys that are neither the tower's nor foreign by rule.</exception>
    public static void RequireOnlyForeignBesides(ITensorSource source, Func<string, bool> isOwned, Func<string, bool> isForeign, string tower)
    {
        var strangers = source.Keys.Where(k => !isOwned(k) && !isForeign(k)).Order(StringComparer.Ordinal).ToList();
        if (strangers.Count == 0) return;
        var report = new LoadReport { Source = source.Location, Prefix = "", Unexpected = strangers };
        throw ModelLoadException.Mismatch($"{source.Location} does not look like a {tower} file: keys outside the tower that no rule explains. {report}", report, source.Location);
    }
}
