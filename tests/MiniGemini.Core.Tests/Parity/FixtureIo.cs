using MiniGemini.Checkpoints;
using MiniGemini.Modeling;
using static TorchSharp.torch;

namespace MiniGemini.Tests.Parity;

/// <summary>The inputs and expected outputs of a fixture folder (its io.safetensors), loaded on demand.</summary>
public sealed class FixtureIo : IDisposable
{
    readonly SafetensorsFile _file;

    FixtureIo(string folder, string fileName)
    {
        Folder = folder;
        _file = SafetensorsFile.Open(Path.Combine(folder, fileName));
    }

    /// <summary>Opens <c>io.safetensors</c> (or another file) of a fixture folder.</summary>
    public static FixtureIo Open(string folder, string fileName = "io.safetensors") => new(folder, fileName);

    public string Folder { get; }

    public IReadOnlyCollection<string> Keys => _file.Keys;

    public bool Has(string key) => _file.TryGetInfo(key, out _);

    /// <summary>Loads a tensor (the caller owns it; inside a dispose scope it is disposed with the scope).</summary>
    public Tensor this[string key] => _file.Load(key);

    public void Dispose() => _file.Dispose();
}
