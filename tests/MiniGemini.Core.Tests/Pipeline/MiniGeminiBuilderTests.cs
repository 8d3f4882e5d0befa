using System.Text.Json.Nodes;
using MiniGemini.Checkpoints;
using MiniGemini.Modeling;
using MiniGemini.Generation;
using MiniGemini.Tests.Parity;
using Xunit;

namespace MiniGemini.Tests.Pipeline;

public sealed class MiniGeminiBuilderTests : IDisposable
{
    readonly string _dir = Directory.CreateTempSubdirectory("mgm-build-").FullName;
    static readonly GenerationOptions Greedy = new() { MaxNewTokens = 8 };
    static string Tiny => FixtureCatalog.Bundled("mgm-tiny");

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    /// <summary>A copy of mgm-tiny's model folder, alone (its ../clip-vit and ../openclip-convnext do not exist there), with config edits.</summary>
    string ModelCopy(Action<JsonObject>? edit = null, string name = "model")
    {
        var target = Directory.CreateDirectory(Path.Combine(_dir, name)).FullName;
        foreach (var file in Directory.GetFiles(Path.Combine(Tiny, "model")))
            File.Copy(file, Path.Combine(target, Path.GetFileName(file)));
        var config = JsonNode.Parse(File.ReadAllText(Path.Combine(target, "config.json")))!.AsObject();
        edit?.Invoke(config);
        File.WriteAllText(Path.Combine(target, "config.json"), config.ToJsonString());
        return target;
    }

    static string Answer(MiniGeminiModel model) =>
        string.Join(",", model.Generate(MiniGeminiPrompt.Ask("Describe the picture.", ImageInput.FromFile(TinyModelFixture.ImagePath)), Greedy).TokenIds);

    [Fact]
    public void A_missing_or_malformed_config_json_is_named_as_such()
    {
        var model = ModelCopy();
        var config = Path.Combine(model, "config.json");
        File.Delete(config);
        var missing = Assert.Throws<ModelLoadException>(() => MiniGeminiBuilder.FromPretrained(model).Build());
        Assert.Contains($"{config}: file not found", missing.Message);

        File.WriteAllText(config, "{ \"mm_hidden_size\": 32, ");
        var malformed = Assert.Throws<ModelLoadException>(() => MiniGeminiBuilder.FromPretrained(model).Build());
        Assert.Contains(config, malformed.Message);
    }

    [Theory]
    [InlineData("num_hidden_layers", 100, "holds 2 layers")]
    [InlineData("vocab_size", 32000, "is 400×96")]
    public void A_config_that_claims_other_sizes_than_the_weights_fails_before_the_llm_is_built(string key, int value, string found)
    {
        var model = ModelCopy(c => c[key] = value);
        var e = Assert.Throws<ModelLoadException>(() => MiniGeminiBuilder.FromPretrained(model).WithTowerSearchRoots(Tiny).Build());
        Assert.Equal(key, e.ConfigKey);
        Assert.Contains($"{key} is {value}", e.Message);
        Assert.Contains(found, e.Message);
    }

    [Fact]
    public void A_missing_tower_names_every_place_looked()
    {
        var model = ModelCopy();
        var roots = Directory.CreateDirectory(Path.Combine(_dir, "zoo")).FullName;
        var e = Assert.Throws<ModelLoadException>(() => MiniGeminiBuilder.FromPretrained(model).WithTowerSearchRoots(roots).Build());
        Assert.Equal("CLIP", e.Tower);
        Assert.Contains(Path.Combine(_dir, "clip-vit"), e.LookedAt!);
        Assert.Contains(Path.Combine(roots, "clip-vit"), e.LookedAt!);
        foreach (var place in e.LookedAt!) Assert.Contains(place, e.Message);
    }

    [Fact]
    public void Towers_are_found_by_their_last_path_segment_under_search_roots()
    {
        var model = ModelCopy(c =>
        {
            c["mm_vision_tower"] = "model_zoo/OpenAI/clip-vit";
            c["mm_vision_tower_aux"] = "model_zoo/OpenAI/openclip-convnext";
        });
        var zoo = Directory.CreateDirectory(Path.Combine(_dir, "zoo")).FullName;
        foreach (var tower in new[] { "clip-vit", "openclip-convnext" })
        {
            var dir = Directory.CreateDirectory(Path.Combine(zoo, tower)).FullName;
            foreach (var file in Directory.GetFiles(Path.Combine(Tiny, tower))) File.Copy(file, Path.Combine(dir, Path.GetFileName(file)));
        }
        using var found = MiniGeminiBuilder.FromPretrained(model).WithTowerSearchRoots(zoo).Build();
        using var reference = MiniGeminiBuilder.FromPretrained(Path.Combine(Tiny, "model")).Build();
        Assert.Equal(Answer(reference), Answer(found));
    }

    [Fact]
    public void Embedded_tiny_clip_without_its_config_is_refused_with_the_reason()
    {
        // The model folder alone, without the config-only tower folder the fixture keeps beside it.
        var model = Path.Combine(Path.GetTempPath(), "mgm-embedded-alone-" + Guid.NewGuid().ToString("N"), "model");
        Directory.CreateDirectory(model);
        foreach (var file in Directory.GetFiles(Path.Combine(FixtureCatalog.Bundled("mgm-tiny-embedded-towers"), "model")))
            File.Copy(file, Path.Combine(model, Path.GetFileName(file)));
        var e = Assert.Throws<ModelLoadException>(() => MiniGeminiBuilder.FromPretrained(model).Build());
        Directory.Delete(Path.GetDirectoryName(model)!, recursive: true);
        Assert.Contains("head count", e.Message);
        Assert.Contains("clip-vit-large-patch14-336", e.Message);
    }

    [Fact]
    public void Composed_from_parts_equals_the_pretrained_model()
    {
        using var composed = MiniGeminiBuilder.FromParts(Path.Combine(Tiny, "model"), Path.Combine(Tiny, "clip-vit"),
            Path.Combine(Tiny, "openclip-convnext"), Path.Combine(Tiny, "model", "model.safetensors")).WithImageSizeAux(64).Build();
        using var reference = MiniGeminiBuilder.FromPretrained(Path.Combine(Tiny, "model")).Build();
        Assert.Equal("mlp2x_gelu", composed.Config.ProjectorType);
        Assert.Equal(Answer(reference), Answer(composed));
    }

    [Fact]
    public void Multimodal_weights_at_the_root_of_their_own_file_compose_as_those_under_model()
    {
        var file = Path.Combine(_dir, "multimodal.safetensors");
        using (var source = Checkpoint.Open(Path.Combine(Tiny, "model")))
        {
            var tensors = source.Keys.Where(k => k.StartsWith("model.vlm_uni_", StringComparison.Ordinal) || k.StartsWith("model.mm_projector.", StringComparison.Ordinal))
                .ToDictionary(k => k["model.".Length..], source.Load);
            SafetensorsWriter.Write(file, tensors, new Dictionary<string, string> { ["format"] = "pt" });
            foreach (var tensor in tensors.Values) tensor.Dispose();
        }
        using var composed = MiniGeminiBuilder.FromParts(Path.Combine(Tiny, "model"), Path.Combine(Tiny, "clip-vit"),
            Path.Combine(Tiny, "openclip-convnext"), file).WithImageSizeAux(64).Build();
        using var reference = MiniGeminiBuilder.FromPretrained(Path.Combine(Tiny, "model")).Build();
        Assert.Equal(Answer(reference), Answer(composed));
    }

    [Fact]
    public void Mismatched_widths_fail_at_build()
    {
        var model = ModelCopy(c => c["mm_hidden_size"] = 128);
        var e = Assert.Throws<ModelLoadException>(() => MiniGeminiBuilder.FromPretrained(model)
            .WithVisionTower(Path.Combine(Tiny, "clip-vit")).WithAuxVisionTower(Path.Combine(Tiny, "openclip-convnext")).Build());
        Assert.Contains("64 wide but mm_hidden_size is 128", e.Message);

        model = ModelCopy(c => c["mm_hidden_size_aux"] = 2880, "aux");
        e = Assert.Throws<ModelLoadException>(() => MiniGeminiBuilder.FromPretrained(model)
            .WithVisionTower(Path.Combine(Tiny, "clip-vit")).WithAuxVisionTower(Path.Combine(Tiny, "openclip-convnext")).Build());
        Assert.Contains("160 channels but mm_hidden_size_aux is 2880", e.Message);
    }

    [Fact]
    public void Unknown_projector_type_fails_at_build()
    {
        var model = ModelCopy(c => c["mm_projector_type"] = "mlp2x_relu");
        var e = Assert.Throws<ModelLoadException>(() => MiniGeminiBuilder.FromPretrained(model)
            .WithVisionTower(Path.Combine(Tiny, "clip-vit")).WithAuxVisionTower(Path.Combine(Tiny, "openclip-convnext")).Build());
        Assert.Contains("mlp2x_relu", e.Message);
    }

    [Fact]
    public void A_grid_without_an_aux_tower_fails_at_build()
    {
        var model = ModelCopy(c =>
        {
            c.Remove("mm_vision_tower_aux");
            c["image_grid"] = 2;
        });
        var e = Assert.Throws<ModelLoadException>(() => MiniGeminiBuilder.FromPretrained(model).WithVisionTower(Path.Combine(Tiny, "clip-vit")).Build());
        Assert.Contains("image grid 2", e.Message);
        Assert.Contains("ConvNeXt", e.Message);
    }

    [Fact]
    public void An_image_size_that_does_not_split_into_regions_fails_at_build()
    {
        var e = Assert.Throws<ModelLoadException>(() => MiniGeminiBuilder.FromPretrained(Path.Combine(Tiny, "model")).WithImageSizeAux(100).Build());
        Assert.Contains("100", e.Message);
    }

    [Theory]
    [InlineData(262144, 1)]
    [InlineData(224, 1000)]
    public void Overridden_image_sizes_and_grids_beyond_their_bounds_fail_at_build(int size, int grid)
    {
        var e = Assert.Throws<ModelLoadException>(() =>
            MiniGeminiBuilder.FromPretrained(Path.Combine(Tiny, "model")).WithImageSizeAux(size).WithImageGrid(grid, global: false).Build());
        Assert.Contains(grid > 1 ? grid.ToString() : size.ToString(), e.Message);
    }

    [Theory]
    [InlineData("tpu", "not supported")]
    [InlineData("cuda:x", "not a number")]
    public void Bad_devices_fail_at_build(string device, string message)
    {
        var e = Assert.Throws<ModelLoadException>(() => MiniGeminiBuilder.FromPretrained(Path.Combine(Tiny, "model")).OnDevice(device).Build());
        Assert.Contains(message, e.Message);
    }

    [Fact]
    public void Cuda_without_a_cuda_libtorch_says_so()
    {
        if (TorchSharp.torch.cuda.is_available()) return; // only meaningful on a CPU-only machine
        var e = Assert.Throws<ModelLoadException>(() => MiniGeminiBuilder.FromPretrained(Path.Combine(Tiny, "model")).OnDevice("cuda").Build());
        Assert.Contains("CUDA is not available", e.Message);
    }

    [Fact]
    public void Build_and_dispose_leave_no_native_tensors()
    {
        MiniGeminiBuilder.FromPretrained(Path.Combine(Tiny, "model")).Build().Dispose(); // warm-up (lazy statics)
        var stats = TorchSharp.DisposeScopeManager.Statistics;
        stats.Reset();
        for (int i = 0; i < 3; i++) MiniGeminiBuilder.FromPretrained(Path.Combine(Tiny, "model")).Build().Dispose();
        Assert.Equal(0, stats.ThreadTotalLiveCount);
    }

    [Fact]
    public async Task BuildAsync_gives_the_model_Build_gives_and_a_cancelled_build_frees_what_it_loaded()
    {
        await using (var built = await MiniGeminiBuilder.FromPretrained(Path.Combine(Tiny, "model")).BuildAsync())
        {
            using var reference = MiniGeminiBuilder.FromPretrained(Path.Combine(Tiny, "model")).Build();
            Assert.Equal(Answer(reference), Answer(built));
        }

        using var cancelled = new CancellationTokenSource();
        cancelled.Cancel();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => MiniGeminiBuilder.FromPretrained(Path.Combine(Tiny, "model")).BuildAsync(cancelled.Token));

        // Cancelled while the towers are resolved: the build stops before the next stage (what was opened goes the way of any failed build).
        using var midway = new CancellationTokenSource();
        var stages = new List<string>();
        var builder = MiniGeminiBuilder.FromPretrained(Path.Combine(Tiny, "model"))
            .WithProgress(new SyncProgress(p => { stages.Add(p.Stage); if (p.Stage == "vision towers") midway.Cancel(); }));
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => builder.BuildAsync(midway.Token));
        Assert.Equal("vision towers", stages[^1]);
    }

    [Fact]
    public async Task DisposeAsync_waits_for_the_call_in_progress()
    {
        var model = MiniGeminiBuilder.FromPretrained(Path.Combine(Tiny, "model")).Build();
        var answer = model.GenerateAsync(MiniGeminiPrompt.Ask("Describe the picture.", ImageInput.FromFile(TinyModelFixture.ImagePath)), Greedy with { MaxNewTokens = 64 });
        await model.DisposeAsync();
        Assert.True(answer.IsCompletedSuccessfully);
        Assert.True((await answer).CompletionTokens > 0);
        Assert.Throws<ObjectDisposedException>(() => model.Generate(MiniGeminiPrompt.Ask("Hi"), Greedy));
        await model.DisposeAsync(); // twice is harmless
    }

    [Fact]
    public void Auto_device_takes_cuda_when_there_is_one_and_the_cpu_otherwise()
    {
        using var model = MiniGeminiBuilder.FromPretrained(Path.Combine(Tiny, "model")).OnDevice("auto").Build();
        Assert.Equal(TorchSharp.torch.cuda.is_available() ? "cuda:0" : "cpu", model.Device);
    }

    [Fact]
    public void Progress_is_reported_and_bf16_runs()
    {
        var stages = new List<LoadProgress>();
        using var model = MiniGeminiBuilder.FromPretrained(Path.Combine(Tiny, "model"))
            .WithPrecision(ModelPrecision.BFloat16).WithProgress(new SyncProgress(stages.Add)).Build();
        Assert.True(stages.Count >= 5);
        Assert.Equal(1.0, stages[^1].Fraction);
        Assert.Equal("ready", stages[^1].Stage);
        Assert.Equal(["configuration", "tokenizer", "vision towers", "weights", "ready"], stages.Select(s => s.Stage).Distinct());
        // The one load reports bytes up to what the files store for every weight (float32 here), never going backwards.
        var weights = stages.Where(s => s.Stage == "weights" && s.BytesTotal > 0).ToList();
        Assert.NotEmpty(weights);
        Assert.Equal(weights[^1].BytesTotal, weights[^1].BytesRead);
        Assert.Equal(model.Module.state_dict().Values.Sum(t => t.numel() * sizeof(float)), weights[^1].BytesTotal);
        for (int i = 1; i < stages.Count; i++)
            Assert.True(stages[i].Completed > stages[i - 1].Completed || stages[i].BytesRead >= stages[i - 1].BytesRead, $"report {i} goes back: {stages[i - 1]} → {stages[i]}");
        Assert.Equal(ModelPrecision.BFloat16, model.Precision);
        Assert.Equal(8, model.Generate(MiniGeminiPrompt.Ask("Hi", ImageInput.FromFile(TinyModelFixture.ImagePath)), Greedy with { EosTokenIds = [] }).CompletionTokens);
    }

    [Fact]
    public void Mapped_and_copied_weights_answer_alike()
    {
        var prompt = MiniGeminiPrompt.Ask("Describe it.", ImageInput.FromFile(TinyModelFixture.ImagePath));
        using var mapped = MiniGeminiBuilder.FromPretrained(Path.Combine(Tiny, "model")).WithMappedWeights().Build();
        using var copied = MiniGeminiBuilder.FromPretrained(Path.Combine(Tiny, "model")).WithMappedWeights(false).Build();
        var a = mapped.Generate(prompt, Greedy with { EosTokenIds = [] });
        var b = copied.Generate(prompt, Greedy with { EosTokenIds = [] });
        Assert.Equal(8, a.CompletionTokens);
        Assert.Equal(b.TokenIds, a.TokenIds);
    }

    /// <summary>
    /// The tokenizer is read beside the towers and weights; one that cannot be read still fails the load with its own
    /// error, naming its file, and a load that fails elsewhere leaves no unobserved task error behind.
    /// </summary>
    [Fact]
    public void A_broken_tokenizer_fails_the_load_with_its_own_error()
    {
        var model = ModelCopy();
        var file = Path.Combine(model, "tokenizer.model");
        File.WriteAllBytes(file, File.ReadAllBytes(file)[..100]);
        var e = Assert.Throws<ModelLoadException>(() => MiniGeminiBuilder.FromPretrained(model).WithTowerSearchRoots(Tiny).Build());
        Assert.Contains(file, e.Message);

        GC.Collect(); // earlier tests' garbage is finalized before counting
        GC.WaitForPendingFinalizers();
        var unobserved = 0;
        void Count(object? sender, UnobservedTaskExceptionEventArgs args) => Interlocked.Increment(ref unobserved);
        TaskScheduler.UnobservedTaskException += Count;
        try
        {
            // No towers beside this copy: the tower error ends the load while the tokenizer's may still be coming.
            Assert.Throws<ModelLoadException>(() => MiniGeminiBuilder.FromPretrained(model).Build());
            Thread.Sleep(200);
            GC.Collect();
            GC.WaitForPendingFinalizers();
            Assert.Equal(0, unobserved);
        }
        finally
        {
            TaskScheduler.UnobservedTaskException -= Count;
        }
    }

    /// <summary>
    /// Towers embedded in the model's checkpoint in the precision the model runs in are mapped with the language model:
    /// every parameter of the tree lies in this process's mapping of the file, and the image tokens and answer equal the
    /// copied model's bit for bit.
    /// </summary>
    [Fact]
    public void Embedded_towers_are_mapped_with_the_language_model()
    {
        if (!OperatingSystem.IsLinux()) return;
        var folder = Path.Combine(FixtureCatalog.Bundled("mgm-tiny-embedded-towers"), "model");
        using var mapped = MiniGeminiBuilder.FromPretrained(folder).WithMappedWeights().Build();
        using var copied = MiniGeminiBuilder.FromPretrained(folder).WithMappedWeights(false).Build();

        var file = Path.Combine(folder, "model.safetensors");
        var mappings = MappingsOf(file);
        Assert.NotEmpty(mappings);
        bool InFile(TorchSharp.torch.Tensor t) => mappings.Any(m => TensorMemory.Address(t) is var a && a >= m.Start && a < m.End);
        foreach (var prefix in new[] { MgmCheckpointKeys.ClipTower, MgmCheckpointKeys.AuxStem, MgmCheckpointKeys.AuxStages, MgmCheckpointKeys.Mining, MgmCheckpointKeys.Projector, "model.layers." })
        {
            var parameters = mapped.Module.named_parameters().Where(p => p.name.StartsWith(prefix, StringComparison.Ordinal)).ToList();
            Assert.NotEmpty(parameters);
            Assert.All(parameters, p => Assert.True(InFile(p.parameter), $"{p.name} is not a view of {file}"));
        }
        Assert.DoesNotContain(copied.Module.named_parameters(), p => InFile(p.parameter));

        using var scope = TorchSharp.torch.NewDisposeScope();
        var pixels = mapped.Processor.PreprocessImages([ImageInput.FromFile(TinyModelFixture.ImagePath)]);
        Assert.True(mapped.Module.GetImageFeatures(pixels).Equals(copied.Module.GetImageFeatures(pixels)), "mapped towers give other image tokens");
        var prompt = MiniGeminiPrompt.Ask("Describe it.", ImageInput.FromFile(TinyModelFixture.ImagePath));
        Assert.Equal(copied.Generate(prompt, Greedy with { EosTokenIds = [] }).TokenIds, mapped.Generate(prompt, Greedy with { EosTokenIds = [] }).TokenIds);
    }

    /// <summary>The address ranges of this process's mappings of <paramref name="file"/> (Linux <c>/proc/self/maps</c>).</summary>
    static List<(nint Start, nint End)> MappingsOf(string file) =>
        File.ReadLines("/proc/self/maps")
            .Where(line => line.EndsWith(" " + file, StringComparison.Ordinal))
            .Select(line => line[..line.IndexOf(' ')].Split('-'))
            .Select(range => ((nint)Convert.ToInt64(range[0], 16), (nint)Convert.ToInt64(range[1], 16)))
            .ToList();

    /// <summary>The decode step compiled when asked for, op by op by default on a CPU; the answers are the same.</summary>
    [Fact]
    public void Compiled_and_eager_decode_steps_answer_alike()
    {
        var prompt = MiniGeminiPrompt.Ask("Describe it.", ImageInput.FromFile(TinyModelFixture.ImagePath));
        using var compiled = MiniGeminiBuilder.FromPretrained(Path.Combine(Tiny, "model")).WithCompiledDecodeStep().Build();
        using var eager = MiniGeminiBuilder.FromPretrained(Path.Combine(Tiny, "model")).Build();
        Assert.NotNull(compiled.Module.CompiledStep());
        Assert.Null(eager.Module.CompiledStep());
        var a = compiled.Generate(prompt, Greedy with { EosTokenIds = [] });
        var b = eager.Generate(prompt, Greedy with { EosTokenIds = [] });
        Assert.Equal(8, a.CompletionTokens);
        Assert.Equal(b.TokenIds, a.TokenIds);
    }

    [Fact]
    public void Template_is_chosen_from_the_model_and_can_be_overridden()
    {
        using var auto = MiniGeminiBuilder.FromPretrained(Path.Combine(Tiny, "model")).Build();
        Assert.Equal("vicuna_v1", auto.Template.Name);
        using var chosen = MiniGeminiBuilder.FromPretrained(Path.Combine(Tiny, "model")).WithTemplate("llava_v1").Build();
        Assert.Equal("llava_v1", chosen.Template.Name);
        Assert.Throws<ArgumentException>(() => MiniGeminiBuilder.FromPretrained(Path.Combine(Tiny, "model")).WithTemplate("nope").Build());
    }

    [Fact]
    public void FromOptions_takes_a_copy_of_the_options()
    {
        var options = new MiniGeminiOptions { ModelPath = Path.Combine(Tiny, "model"), Template = "vicuna_v1" };
        var builder = MiniGeminiBuilder.FromOptions(options);
        options.ModelPath = Path.Combine(_dir, "missing");
        options.Template = "no_such_template";
        options.TowerSearchRoots.Add(Path.Combine(_dir, "missing-root"));

        using var model = builder.Build();

        Assert.Equal("vicuna_v1", model.Template.Name);
        Assert.Single(options.TowerSearchRoots);
    }

    sealed class SyncProgress(Action<LoadProgress> report) : IProgress<LoadProgress>
    {
        public void Report(LoadProgress value) => report(value);
    }
}
