using System.Security.Cryptography;
using static TorchSharp.torch;

namespace MiniGemini.Training;

/// <summary>
/// Image tokens before the projector, per picture (keyed by the SHA-256 of its bytes), for stages in which
/// they cannot change. Owns its tensors; the oldest entry is released first once <c>capacity</c> are held.
/// </summary>
internal sealed class ImageTokenCache(int capacity) : IDisposable
{
    readonly Dictionary<string, Tensor> _tokens = [];
    readonly Queue<string> _order = new();

    public int Count => _tokens.Count;

    public static string KeyOf(ImageInput image) =>
        Convert.ToHexString(image.Path is { } path ? SHA256.HashData(File.ReadAllBytes(path)) : SHA256.HashData(image.Bytes.Span));

    public bool TryGet(string key, out Tensor tokens) => _tokens.TryGetValue(key, out tokens!);

    /// <summary>Keeps a copy of <paramref name="tokens"/> <c>[N, D]</c>, outside any dispose scope.</summary>
    public void Add(string key, Tensor tokens)
    {
        if (_tokens.ContainsKey(key)) return;
        if (_tokens.Count == capacity && _order.TryDequeue(out var oldest) && _tokens.Remove(oldest, out var released)) released.Dispose();
        var copy = tokens.detach().clone();
        copy.DetachFromDisposeScope();
        _tokens[key] = copy;
        _order.Enqueue(key);
    }

    public void Dispose()
    {
        foreach (var tokens in _tokens.Values) tokens.Dispose();
        _tokens.Clear();
        _order.Clear();
    }
}
