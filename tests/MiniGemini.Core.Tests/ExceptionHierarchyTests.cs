using Xunit;

namespace MiniGemini.Tests;

/// <summary>The library's own exceptions share one root, so one <c>catch</c> takes every failure it reports.</summary>
public sealed class ExceptionHierarchyTests
{
    [Fact]
    public void Every_exception_the_library_defines_derives_from_MiniGeminiException_in_the_root_namespace()
    {
        var defined = typeof(MiniGeminiException).Assembly.GetTypes()
            .Concat(typeof(MiniGemini.Hosting.ServiceCollectionExtensions).Assembly.GetTypes())
            .Where(t => typeof(Exception).IsAssignableFrom(t) && t != typeof(MiniGeminiException))
            .ToList();
        Assert.All(defined, t => Assert.True(t.IsSubclassOf(typeof(MiniGeminiException)), $"{t.FullName} does not derive from MiniGeminiException"));
        Assert.All(defined, t => Assert.Equal("MiniGemini", t.Namespace));
        Assert.Equal(
            ["ContextLengthExceededException", "EvaluationFileException", "ImageGenerationException", "InvalidImageException",
             "MiniGeminiTrainingException", "ModelLoadException", "TrainingDataException"],
            defined.Where(t => t.IsPublic).Select(t => t.Name).Order(StringComparer.Ordinal));
        Assert.True(typeof(TrainingDataException).IsSubclassOf(typeof(MiniGeminiTrainingException)));
        Assert.True(typeof(EvaluationFileException).IsSubclassOf(typeof(MiniGeminiTrainingException)));
    }

    [Fact]
    public void The_factories_set_what_each_kind_of_load_failure_carries()
    {
        var config = ModelLoadException.Config("cfg.json: required field 'hidden_size' is missing.", "cfg.json", "hidden_size");
        Assert.Equal(("cfg.json", "hidden_size", null), (config.FilePath, config.ConfigKey, config.TensorName));
        Assert.Null(config.Report);

        var tower = ModelLoadException.TowerNotFound("CLIP", "../clip-vit", ["/a/clip-vit", "/b/clip-vit"]);
        Assert.Equal(("CLIP", "../clip-vit"), (tower.Tower, tower.FilePath));
        Assert.Equal(["/a/clip-vit", "/b/clip-vit"], tower.LookedAt!);
        Assert.StartsWith("The CLIP tower '../clip-vit' was not found. Looked at:\n  /a/clip-vit\n  /b/clip-vit\n", tower.Message);

        MiniGeminiException root = new ModelLoadException("model.safetensors: no tensor 'w'.", "model.safetensors", "w");
        Assert.Equal("w", Assert.IsType<ModelLoadException>(root).TensorName);
    }
}
