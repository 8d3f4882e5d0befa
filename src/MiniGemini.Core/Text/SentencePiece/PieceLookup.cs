namespace MiniGemini.Text.SentencePiece;

/// <summary>String → id lookup that accepts spans (no substring allocation on .NET 9+).</summary>
internal sealed class PieceLookup
{
    readonly Dictionary<string, int> _map;
#if NET9_0_OR_GREATER
    readonly Dictionary<string, int>.AlternateLookup<ReadOnlySpan<char>> _spans;
#endif

    public PieceLookup(Dictionary<string, int> map)
    {
        _map = map;
#if NET9_0_OR_GREATER
        _spans = map.GetAlternateLookup<ReadOnlySpan<char>>();
#endif
    }

    public bool TryGet(ReadOnlySpan<char> key, out int id) =>
#if NET9_0_OR_GREATER
        _spans.TryGetValue(key, out id);
#else
        _map.TryGetValue(key.ToString(), out id);
#endif
}
