using TorchSharp;

namespace MiniGemini.Checkpoints;

/// <summary>One row of a key-rename table: module keys under <paramref name="To"/> are <paramref name="From"/>-prefixed keys of <paramref name="Source"/>.</summary>
internal sealed record KeyRename(string To, ITensorSource Source, string From);

/// <summary>
/// Several checkpoint files seen as one, under the keys of one module tree (as HF's checkpoint conversion mappings):
/// a key is read from the row of the table whose <see cref="KeyRename.To"/> is the longest prefix of it, with that
/// prefix replaced by the row's <see cref="KeyRename.From"/>. A row with an empty <c>To</c> serves every other key.
/// Keys of a file outside its rows' prefixes are not seen (a tower file's text tower, say). The files stay the
/// caller's to dispose.
/// </summary>
internal sealed class RenamedSource : ITensorSource
{
    readonly KeyRename[] _table;
    readonly Dictionary<string, (KeyRename Row, string Key)> _keys = new(StringComparer.Ordinal);

    public RenamedSource(IEnumerable<KeyRename> table)
    {
        _table = [.. table.OrderByDescending(r => r.To.Length)];
        foreach (var row in _table)
            foreach (var key in row.Source.Keys)
            {
                if (!key.StartsWith(row.From, StringComparison.Ordinal)) continue;
                var renamed = row.To + key[row.From.Length..];
                // Only the most specific row owns a key: an MGM file's own copy of a tower given apart is not read.
                if (RowOf(renamed) == row) _keys.TryAdd(renamed, (row, key));
            }
    }

    KeyRename? RowOf(string key) => _table.FirstOrDefault(r => key.StartsWith(r.To, StringComparison.Ordinal));

    public string Location => string.Join(" + ", _table.Select(r => r.Source.Location).Distinct());

    public IReadOnlyCollection<string> Keys => _keys.Keys;

    public bool TryGetInfo(string key, out TensorInfo info)
    {
        if (_keys.TryGetValue(key, out var entry)) return entry.Row.Source.TryGetInfo(entry.Key, out info);
        info = default!;
        return false;
    }

    public torch.Tensor Load(string key) => _keys.TryGetValue(key, out var entry)
        ? entry.Row.Source.Load(entry.Key)
        : throw new ModelLoadException($"{Location}: no tensor '{key}'.", Location, key);

    public void ReadInto(string key, torch.Tensor destination)
    {
        if (!_keys.TryGetValue(key, out var entry)) throw new ModelLoadException($"{Location}: no tensor '{key}'.", Location, key);
        entry.Row.Source.ReadInto(entry.Key, destination);
    }

    public bool TryMap(string key, out torch.Tensor tensor)
    {
        if (_keys.TryGetValue(key, out var entry)) return entry.Row.Source.TryMap(entry.Key, out tensor);
        tensor = null!;
        return false;
    }

    public void Dispose()
    {
    }
}
