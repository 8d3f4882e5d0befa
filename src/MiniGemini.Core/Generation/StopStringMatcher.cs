namespace MiniGemini.Generation;

/// <summary>
/// Cuts streamed text at the first stop string. Text that could still become the start of a stop string is held back
/// until it no longer can, so a stop string never reaches the caller, even when it arrives split over several tokens.
/// </summary>
internal sealed class StopStringMatcher
{
    readonly string[] _stops;
    readonly System.Text.StringBuilder _pending = new();

    public StopStringMatcher(IEnumerable<string> stops) => _stops = stops.Where(s => s.Length > 0).Distinct().ToArray();

    /// <summary>True once a stop string was seen; nothing more is released after that.</summary>
    public bool Stopped { get; private set; }

    /// <summary>Adds decoded text; returns the part that is safe to release now.</summary>
    public string Push(string delta)
    {
        if (Stopped || delta.Length == 0) return "";
        _pending.Append(delta);
        var text = _pending.ToString();
        int cut = -1, hold = 0;
        foreach (var stop in _stops)
        {
            int at = text.IndexOf(stop, StringComparison.Ordinal);
            if (at >= 0 && (cut < 0 || at < cut)) cut = at;
            hold = Math.Max(hold, LongestSuffixThatPrefixes(text, stop));
        }
        if (cut >= 0)
        {
            Stopped = true;
            _pending.Clear();
            return text[..cut];
        }
        var release = text[..^hold];
        _pending.Remove(0, release.Length);
        return release;
    }

    /// <summary>Releases what was held back (the stream ended without a stop string).</summary>
    public string Flush()
    {
        if (Stopped) return "";
        var rest = _pending.ToString();
        _pending.Clear();
        return rest;
    }

    static int LongestSuffixThatPrefixes(string text, string stop)
    {
        for (int n = Math.Min(stop.Length - 1, text.Length); n > 0; n--)
            if (string.CompareOrdinal(text, text.Length - n, stop, 0, n) == 0) return n;
        return 0;
    }
}
