using Xunit;

namespace MiniGemini.Tests.Parity;

[Collection(EnvironmentCollection.Name)]
public sealed class FixtureCatalogTests
{
    [Theory]
    [InlineData("clip-vit-tiny", FixtureKind.ClipVit)]
    [InlineData("clip-vit-tiny-openai-layout", FixtureKind.ClipVit)]
    [InlineData("convnext-tiny", FixtureKind.ConvNeXt)]
    [InlineData("mining", FixtureKind.Mining)]
    [InlineData("llm-gemma", FixtureKind.Llm)]
    [InlineData("llm-mixtral", FixtureKind.Llm)]
    [InlineData("tokenizer-sp", FixtureKind.Tokenizer)]
    [InlineData("tokenizer-mistral-real", FixtureKind.Tokenizer)]
    [InlineData("preprocess", FixtureKind.Preprocess)]
    [InlineData("mgm-tiny", FixtureKind.Mgm)]
    [InlineData("mgm-tiny-hd", FixtureKind.Mgm)]
    [InlineData("mgm-tiny-embedded-towers", FixtureKind.Mgm)]
    public void Bundled_folders_are_classified_by_layout(string folder, FixtureKind kind)
    {
        Assert.Equal(kind, FixtureCatalog.KindOf(FixtureCatalog.Bundled(folder)));
        Assert.Contains($"reference/{folder}", FixtureCatalog.Folders(kind).Select(f => f.Id));
    }

    [Fact]
    public void Extra_folders_and_fixture_roots_from_the_environment_are_added()
    {
        var root = Directory.CreateTempSubdirectory("mgm-extra-").FullName;
        var previous = Environment.GetEnvironmentVariable(FixtureCatalog.ExtraVariable);
        try
        {
            // A fixture set root with two case folders, and one case folder listed directly.
            var set = Directory.CreateDirectory(Path.Combine(root, "set")).FullName;
            foreach (var name in new[] { "tokenizer-a", "tokenizer-b" })
            {
                var dir = Directory.CreateDirectory(Path.Combine(set, name)).FullName;
                File.WriteAllText(Path.Combine(dir, "tokenizer.model"), "");
                File.WriteAllText(Path.Combine(dir, "cases.json"), "{}");
            }
            var single = Directory.CreateDirectory(Path.Combine(root, "mining-extra")).FullName;
            foreach (var file in new[] { "weights.safetensors", "config.json", "io.safetensors" })
                File.WriteAllText(Path.Combine(single, file), "");

            Environment.SetEnvironmentVariable(FixtureCatalog.ExtraVariable, $"{set}:{single}");
            var tokenizers = FixtureCatalog.Folders(FixtureKind.Tokenizer).Select(f => f.Id).ToList();
            Assert.Contains(Path.Combine(set, "tokenizer-a"), tokenizers);
            Assert.Contains(Path.Combine(set, "tokenizer-b"), tokenizers);
            Assert.Contains("reference/tokenizer-sp", tokenizers);
            Assert.Contains(single, FixtureCatalog.Folders(FixtureKind.Mining).Select(f => f.Id));
            Assert.Equal(single, FixtureCatalog.Resolve(single));

            Environment.SetEnvironmentVariable(FixtureCatalog.ExtraVariable, Path.Combine(root, "does-not-exist"));
            Assert.Throws<DirectoryNotFoundException>(() => FixtureCatalog.ExtraFolders().ToList());
        }
        finally
        {
            Environment.SetEnvironmentVariable(FixtureCatalog.ExtraVariable, previous);
            Directory.Delete(root, recursive: true);
        }
    }
}

/// <summary>Tests that change process-wide environment variables run alone.</summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class EnvironmentCollection
{
    public const string Name = "Environment";
}
