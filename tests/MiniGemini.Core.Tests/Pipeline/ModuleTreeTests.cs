using MiniGemini.Checkpoints;
using MiniGemini.Modeling;
using MiniGemini.Tests.Parity;
using Xunit;
using static TorchSharp.torch;

namespace MiniGemini.Tests.Pipeline;

/// <summary>The module tree is the checkpoint: its keys are the file's, and a key it lacks is an error, not skipped.</summary>
public sealed class ModuleTreeTests : IDisposable
{
    readonly string _dir = Directory.CreateTempSubdirectory("mgm-tree-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    static string Embedded => FixtureCatalog.Bundled("mgm-tiny-embedded-towers");

    [Fact]
    public void The_tree_has_exactly_the_keys_of_a_checkpoint_with_embedded_towers()
    {
        using var model = MiniGeminiBuilder.FromPretrained(Path.Combine(Embedded, "model")).Build();
        using var checkpoint = Checkpoint.Open(Path.Combine(Embedded, "model"));
        var stored = checkpoint.Keys.Where(k => !ClipVisionTransformer.IsForeignKey(k)).Order(StringComparer.Ordinal).ToList();
        Assert.Equal(stored, model.Module.state_dict().Keys.Order(StringComparer.Ordinal));
        // The prefixes the key-rename table maps other files onto are the tree's own.
        foreach (var prefix in new[] { MgmCheckpointKeys.ClipTower, MgmCheckpointKeys.AuxStem, MgmCheckpointKeys.AuxStages, MgmCheckpointKeys.Mining, MgmCheckpointKeys.Projector })
            Assert.Contains(model.Module.state_dict().Keys, k => k.StartsWith(prefix, StringComparison.Ordinal));
        // Saving is the inverse: every parameter under its key, the vision parts first.
        var saved = model.Module.CheckpointParameters().Select(p => p.Key).ToList();
        Assert.Equal(model.Module.named_parameters().Select(p => p.name).Order(StringComparer.Ordinal), saved.Order(StringComparer.Ordinal));
        Assert.StartsWith(MgmCheckpointKeys.ClipTower, saved[0]);
    }

    [Fact]
    public void A_key_under_a_vision_prefix_that_the_tree_lacks_is_named_as_unexpected()
    {
        var model = Directory.CreateDirectory(Path.Combine(_dir, "model")).FullName;
        foreach (var file in Directory.GetFiles(Path.Combine(Embedded, "model")))
            if (!file.EndsWith(".safetensors", StringComparison.Ordinal)) File.Copy(file, Path.Combine(model, Path.GetFileName(file)));
        CopyDirectory(Path.Combine(Embedded, "clip-vit-large-patch14-336"), Path.Combine(_dir, "clip-vit-large-patch14-336"));
        const string stray = "model.vision_tower_aux.vision_stem.9.weight";
        using (var checkpoint = Checkpoint.Open(Path.Combine(Embedded, "model")))
        {
            var tensors = checkpoint.Keys.ToDictionary(k => k, checkpoint.Load);
            tensors[stray] = zeros(3);
            SafetensorsWriter.Write(Path.Combine(model, "model.safetensors"), tensors);
            foreach (var tensor in tensors.Values) tensor.Dispose();
        }
        var e = Assert.Throws<ModelLoadException>(() => MiniGeminiBuilder.FromPretrained(model).Build());
        Assert.NotNull(e.Report);
        Assert.Equal([stray], e.Report!.Unexpected);
    }

    [Fact]
    public void EmbedInputs_splices_each_row_and_pads_the_shorter_on_the_left()
    {
        using var model = MiniGeminiBuilder.FromPretrained(TinyModelFixture.ModelFolder).Build();
        using var scope = NewDisposeScope();
        var image = ImageInput.FromFile(TinyModelFixture.ImagePath);
        var withImage = model.Processor.Tokenize(MiniGeminiPrompt.Ask("Describe the picture.", image));
        var textOnly = model.Processor.Tokenize(MiniGeminiPrompt.Ask("Hi"));
        var tokens = model.Module.GetImageFeatures(model.Processor.PreprocessImages([image]));              // [1, N, H]
        var (embeds, mask) = model.Module.EmbedInputs([withImage, textOnly], tokens);
        long length = model.Processor.CountPositions(withImage), shorter = textOnly.Length;
        Assert.Equal(new[] { 2, length, model.Config.Llm.HiddenSize }, embeds.shape);
        Assert.Equal(length - shorter, (long)(mask!.shape[1] - mask[1].sum().item<long>()));
        Assert.True(embeds[0].allclose(model.Module.Splice(withImage, tokens)));
        Assert.True(embeds[1].narrow(0, length - shorter, shorter).allclose(model.Module.Splice(textOnly, null)));
        Assert.Throws<ArgumentException>(() => model.Module.EmbedInputs([withImage, withImage], tokens));
    }

    static void CopyDirectory(string from, string to)
    {
        Directory.CreateDirectory(to);
        foreach (var file in Directory.GetFiles(from)) File.Copy(file, Path.Combine(to, Path.GetFileName(file)));
    }
}
