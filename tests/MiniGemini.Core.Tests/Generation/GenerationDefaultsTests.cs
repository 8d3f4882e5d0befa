using MiniGemini.Generation;
using MiniGemini.Tests.Parity;
using MiniGemini.Tests.Pipeline;
using Xunit;

namespace MiniGemini.Tests.Generation;

/// <summary>A model's generation_config.json sets what a request without options generates with; options passed win.</summary>
public sealed class GenerationDefaultsTests : IDisposable
{
    readonly string _dir = Directory.CreateTempSubdirectory("mgm-defaults-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    /// <summary>mgm-tiny (model and towers) copied, with this generation_config.json beside its config.json.</summary>
    string ModelWith(string generationConfig)
    {
        var source = FixtureCatalog.Bundled("mgm-tiny");
        foreach (var file in Directory.GetFiles(source, "*", SearchOption.AllDirectories))
        {
            var target = Path.Combine(_dir, Path.GetRelativePath(source, file));
            Directory.CreateDirectory(Path.GetDirectoryName(target)!);
            File.Copy(file, target);
        }
        var model = Path.Combine(_dir, "model");
        File.WriteAllText(Path.Combine(model, "generation_config.json"), generationConfig);
        return model;
    }

    static MiniGeminiPrompt Prompt => MiniGeminiPrompt.Ask("Describe the picture.", ImageInput.FromFile(TinyModelFixture.ImagePath));

    [Fact]
    public void Sampling_settings_budget_stop_and_pad_ids_come_from_generation_config()
    {
        var folder = ModelWith("""{"do_sample": true, "temperature": 0.7, "top_p": 0.9, "top_k": 20, "max_new_tokens": 3, "eos_token_id": [2, 5], "pad_token_id": 1}""");
        using var model = MiniGeminiBuilder.FromPretrained(folder).Build();
        var defaults = model.Defaults.Options;
        Assert.Equal((0.7, 0.9, 20, 3), (defaults.Temperature, defaults.TopP, defaults.TopK, defaults.MaxNewTokens));
        Assert.Equal([2, 5], model.Defaults.StopTokenIds.Take(2));
        Assert.Equal(1, model.Defaults.PadTokenId);

        // A request without options samples within the budget of generation_config.json.
        Assert.InRange(model.Generate(Prompt).TokenIds.Count, 1, 3);
        // Options passed are the caller's: greedy, with its own budget, and the model's stop and pad ids filled in.
        var resolved = model.Defaults.Resolve(new GenerationOptions { MaxNewTokens = 8 });
        Assert.Equal((0.0, 8), (resolved.Temperature, resolved.MaxNewTokens));
        Assert.Equal(model.Defaults.StopTokenIds, resolved.EosTokenIds);
        Assert.Equal(1, resolved.PadTokenId);
    }

    [Fact]
    public void Without_generation_config_requests_are_greedy_and_stop_at_config_eos_and_the_template_stops()
    {
        using var model = MiniGeminiBuilder.FromPretrained(TinyModelFixture.ModelFolder).Build();
        Assert.Equal(0.0, model.Defaults.Options.Temperature);
        Assert.Null(model.Defaults.Options.MaxNewTokens);
        Assert.Equal(model.Config.Llm.EosTokenIds, model.Defaults.StopTokenIds.Take(model.Config.Llm.EosTokenIds.Count));
        foreach (var id in model.Template.StopTokenIds(model.Tokenizer)) Assert.Contains(id, model.Defaults.StopTokenIds);
        var greedy = new GenerationOptions { MaxNewTokens = 8 };
        Assert.Equal(model.Generate(Prompt, greedy).TokenIds, model.Generate(Prompt, greedy).TokenIds);
    }
}
