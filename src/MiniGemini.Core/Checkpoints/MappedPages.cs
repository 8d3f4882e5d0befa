namespace MiniGemini.Checkpoints;

/// <summary>
/// How much of this process's mappings of a folder's <c>.safetensors</c> files is resident, and how much of that in
/// 2 MiB pages (Linux <c>/proc/self/smaps</c>: <c>Rss</c> and <c>FilePmdMapped</c> of each mapping of such a file).
/// A mapped checkpoint is read as fast as a copy when the page cache holds it in 2 MiB pages; where it holds it in
/// 4 KiB pages (files written in small pieces, or read while free memory was fragmented), a decode can be up to 40 %
/// slower (docs/benchmarks.md#real-sizes).
/// </summary>
/// <param name="Resident">Bytes of the mappings that are resident.</param>
/// <param name="InHugePages">Of those, bytes mapped in 2 MiB pages.</param>
internal readonly record struct MappedPages(long Resident, long InHugePages)
{
    /// <summary>Resident bytes mapped in 4 KiB pages.</summary>
    public long InSmallPages => Resident - InHugePages;

    /// <summary>The mappings of <paramref name="folder"/>'s safetensors files now; null where /proc/self/smaps cannot be read.</summary>
    public static MappedPages? Of(string folder)
    {
        if (!OperatingSystem.IsLinux()) return null;
        try
        {
            using var smaps = new StreamReader("/proc/self/smaps");
            return Parse(smaps, folder);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }

    /// <summary>
    /// Sums <c>Rss</c> and <c>FilePmdMapped</c> over the mappings in <paramref name="smaps"/> of the safetensors files
    /// directly in <paramref name="folder"/> (not in its subfolders, where towers may lie).
    /// </summary>
    internal static MappedPages Parse(TextReader smaps, string folder)
    {
        var directory = Path.TrimEndingDirectorySeparator(Path.GetFullPath(folder));
        long resident = 0, huge = 0;
        bool counted = false;
        for (var line = smaps.ReadLine(); line is not null; line = smaps.ReadLine())
        {
            if (IsMappingHeader(line, out var path))
                counted = path.EndsWith(".safetensors", StringComparison.Ordinal) && Path.GetDirectoryName(path) == directory;
            else if (counted && Kilobytes(line, "Rss:") is { } rss)
                resident += rss * 1024;
            else if (counted && Kilobytes(line, "FilePmdMapped:") is { } pmd)
                huge += pmd * 1024;
        }
        return new MappedPages(resident, huge);
    }

    /// <summary>
    /// A mapping's first line: <c>start-end perms offset dev inode [path]</c>, its fields separated by spaces; its path,
    /// which may itself hold spaces, is what follows the fifth field ("" for anonymous memory).
    /// </summary>
    static bool IsMappingHeader(string line, out string path)
    {
        path = "";
        int space = line.IndexOf(' ');
        if (space <= 0) return false;
        var range = line.AsSpan(0, space);
        int dash = range.IndexOf('-');
        if (dash <= 0 || !IsHex(range[..dash]) || !IsHex(range[(dash + 1)..])) return false;
        int at = 0;
        for (int field = 0; field < 5; field++)
        {
            at = line.IndexOf(' ', at);
            if (at < 0) return field == 4;
            while (at < line.Length && line[at] == ' ') at++;
        }
        path = line[at..];
        return true;
    }

    static bool IsHex(ReadOnlySpan<char> text)
    {
        foreach (char c in text)
            if (!char.IsAsciiHexDigit(c)) return false;
        return text.Length > 0;
    }

    static long? Kilobytes(string line, string field) =>
        line.StartsWith(field, StringComparison.Ordinal) && long.TryParse(line[field.Length..].Trim().Split(' ')[0], out long kb) ? kb : null;
}
