using MiniGemini.Tests.Parity;
using Xunit;

namespace MiniGemini.Tests.Pipeline;

/// <summary>The bundled mgm-tiny model (random weights), loaded once per test class.</summary>
public sealed class TinyModelFixture : IDisposable
{
    public TinyModelFixture() => Model = MiniGeminiBuilder.FromPretrained(ModelFolder).Build();

    public static string ModelFolder => Path.Combine(FixtureCatalog.Bundled("mgm-tiny"), "model");

    public static string HdModelFolder => Path.Combine(FixtureCatalog.Bundled("mgm-tiny-hd"), "model");

    public static string ImagePath => Path.Combine(FixtureCatalog.Bundled("preprocess"), "input.png");

    public MiniGeminiModel Model { get; }

    public void Dispose() => Model.Dispose();
}

[CollectionDefinition(Name)]
public sealed class TinyModelCollection : ICollectionFixture<TinyModelFixture>
{
    public const string Name = "mgm-tiny model";
}
