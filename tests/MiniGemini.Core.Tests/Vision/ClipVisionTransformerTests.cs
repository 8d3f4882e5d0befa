using MiniGemini.Checkpoints;
using MiniGemini.Modeling;
using MiniGemini.Tests.Parity;
using MiniGemini.Vision;
using TorchSharp;
using Xunit;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace MiniGemini.Tests.Vision;

public sealed class ClipVisionTransformerTests(ITestOutputHelper output) : IDisposable
{
    readonly string _dir = Directory.CreateTempSubdirectory("mgm-vit-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    public static TheoryData<string> ClipCases => FixtureCatalog.Cases(FixtureKind.ClipVit);

    static string ClipTiny => FixtureCatalog.Bundled("clip-vit-tiny");
    static string MgmTiny => FixtureCatalog.Bundled("mgm-tiny");
    static string EmbeddedTowers => Path.Combine(FixtureCatalog.Bundled("mgm-tiny-embedded-towers"), "model", "model.safetensors");

    [Theory]
    [MemberData(nameof(ClipCases))]
    public void Matches_the_reference_hidden_states_pooler_and_selected_features(string id)
    {
        var folder = FixtureCatalog.Resolve(id);
        using var encoder = ClipVisionTransformer.FromPretrained(folder);
        using var io = FixtureIo.Open(folder);
        using var scope = NewDisposeScope();
        var pixels = io["pixel_values"];

        using var result = encoder.Forward(pixels, outputHiddenStates: true);
        var expectedCount = io.Keys.Count(k => k.StartsWith("hidden_states.", StringComparison.Ordinal));
        Assert.Equal(expectedCount, result.HiddenStates.Count);
        for (int i = 0; i < expectedCount; i++)
            Check(io[$"hidden_states.{i}"], result.HiddenStates[i], $"{id} hidden_states.{i}");
        Check(io["last_hidden_state"], result.LastHiddenState, $"{id} last_hidden_state");
        Check(io["pooler_output"], result.PoolerOutput, $"{id} pooler_output");

        var features = encoder.SelectFeatures(pixels, selectLayer: -2, feature: "patch");
        Check(io["features_select_m2_patch"], features, $"{id} features_select_m2_patch");
    }

    void Check(Tensor expected, Tensor actual, string name) =>
        output.WriteLine($"{name}: max |Δ| = {TensorAssert.Close(expected, actual, name):E3}");

    [Fact]
    public void Feature_selection_runs_only_the_layers_it_needs()
    {
        using var encoder = ClipVisionTransformer.FromPretrained(ClipTiny);
        var calls = new int[encoder.Layers.Count];
        var hooks = encoder.Layers.Select((layer, i) => layer.register_forward_pre_hook(_ => calls[i]++)).ToList();
        using var io = FixtureIo.Open(ClipTiny);
        using var scope = NewDisposeScope();
        var pixels = io["pixel_values"];

        TensorAssert.Close(io["features_select_m2_patch"], encoder.SelectFeatures(pixels), "select -2 patch");
        Assert.Equal([1, 1, 0], calls); // hidden_states[-2] is layer 1's output: layer 2 never runs

        Array.Clear(calls);
        var withCls = encoder.SelectFeatures(pixels, selectLayer: 1, feature: "cls_patch");
        TensorAssert.Close(io["hidden_states.1"], withCls, "select 1 cls_patch");
        Assert.Equal([1, 0, 0], calls);

        Array.Clear(calls);
        TensorAssert.Close(io["hidden_states.0"].narrow(1, 1, 16), encoder.SelectFeatures(pixels, selectLayer: 0), "select 0 patch");
        Assert.Equal([0, 0, 0], calls);

        Array.Clear(calls);
        using (encoder.Forward(pixels, outputHiddenStates: false)) { }
        Assert.Equal([1, 1, 1], calls);
        hooks.ForEach(h => h.remove());
    }

    [Fact]
    public void Feature_selection_rejects_layers_and_features_that_do_not_exist()
    {
        using var encoder = ClipVisionTransformer.FromPretrained(ClipTiny);
        using var pixels = zeros(1, 3, 56, 56);
        Assert.Throws<ArgumentOutOfRangeException>(() => encoder.SelectFeatures(pixels, selectLayer: -5));
        Assert.Throws<ArgumentOutOfRangeException>(() => encoder.SelectFeatures(pixels, selectLayer: 4));
        Assert.Throws<ArgumentException>(() => encoder.SelectFeatures(pixels, feature: "cls"));
        using var wrongSize = zeros(1, 3, 64, 64);
        var e = Assert.Throws<ArgumentException>(() => encoder.SelectFeatures(wrongSize));
        Assert.Contains("[1, 3, 64, 64]", e.Message);
    }

    [Fact]
    public void The_tower_inside_an_MGM_checkpoint_has_the_same_weights_as_the_tower_folder()
    {
        using var separate = ClipVisionTransformer.FromPretrained(Path.Combine(MgmTiny, "clip-vit"));
        using var source = Checkpoint.Open(EmbeddedTowers);
        using var embedded = ClipVisionTransformer.Load(source, separate.Config, MgmCheckpointKeys.ClipTower);
        var compared = VisionTestFiles.AssertSameWeights(separate, embedded);
        Assert.Equal(55, compared);
    }

    [Fact]
    public void The_architecture_can_be_read_from_the_shapes_except_the_head_count()
    {
        var expected = ClipVisionConfig.Load(Path.Combine(MgmTiny, "clip-vit", "config.json"));
        using var source = Checkpoint.Open(EmbeddedTowers);
        Assert.Equal(expected, ClipVisionTransformer.InferConfig(source, MgmCheckpointKeys.ClipTower, numAttentionHeads: 4));
        // Without a head count the OpenAI rule (64-wide heads) applies, which this tiny tower does not follow.
        Assert.Equal(expected with { NumAttentionHeads = 1 }, ClipVisionTransformer.InferConfig(source, MgmCheckpointKeys.ClipTower));
    }

    [Fact]
    public void A_wrong_shape_is_a_mismatch_that_names_the_key()
    {
        var path = VisionTestFiles.Rewrite(Path.Combine(ClipTiny, "model.safetensors"), Path.Combine(_dir, "model.safetensors"),
            t => t["encoder.layers.1.mlp.fc1.weight"] = t["encoder.layers.1.mlp.fc1.weight"].narrow(0, 0, 127).contiguous());
        using var source = Checkpoint.Open(path);
        var config = ClipVisionConfig.Load(Path.Combine(ClipTiny, "config.json"));
        var e = Assert.Throws<ModelLoadException>(() => ClipVisionTransformer.Load(source, config));
        Assert.NotNull(e.Report);
        Assert.Equal("encoder.layers.1.mlp.fc1.weight", e.TensorName);
        Assert.Contains("[127, 64] in the checkpoint but [128, 64] in the module", e.Message);
    }

    [Fact]
    public void Text_tower_projections_and_position_ids_are_skipped_by_rule_but_other_keys_are_errors()
    {
        var openai = Path.Combine(FixtureCatalog.Bundled("clip-vit-tiny-openai-layout"), "model.safetensors");
        using (var source = Checkpoint.Open(openai))
        {
            var outside = source.Keys.Where(k => !k.StartsWith("vision_model.", StringComparison.Ordinal)).ToList();
            Assert.Contains("logit_scale", outside);
            Assert.Contains("visual_projection.weight", outside);
            Assert.Contains(outside, k => k.StartsWith("text_model.", StringComparison.Ordinal));
            Assert.All(outside, k => Assert.True(ClipVisionTransformer.IsForeignKey(k), k));
            Assert.True(source.TryGetInfo("vision_model.embeddings.position_ids", out _));
        }

        var config = ClipVisionConfig.Load(Path.Combine(ClipTiny, "config.json"));
        var stray = VisionTestFiles.Rewrite(openai, Path.Combine(_dir, "stray.safetensors"), t => t["vision_head.weight"] = ones(2));
        using (var source = Checkpoint.Open(stray))
        {
            var e = Assert.Throws<ModelLoadException>(() => ClipVisionTransformer.Load(source, config));
            Assert.NotNull(e.Report);
            Assert.Equal(["vision_head.weight"], e.Report!.Unexpected);
        }

        var inside = VisionTestFiles.Rewrite(openai, Path.Combine(_dir, "inside.safetensors"), t => t["vision_model.encoder.layers.9.mlp.fc1.bias"] = ones(2));
        using (var source = Checkpoint.Open(inside))
        {
            var e = Assert.Throws<ModelLoadException>(() => ClipVisionTransformer.Load(source, config));
            Assert.NotNull(e.Report);
            Assert.Equal(["encoder.layers.9.mlp.fc1.bias"], e.Report!.Unexpected);
        }
    }

    [Fact]
    public void A_checkpoint_without_a_CLIP_tower_is_a_clear_error()
    {
        using var source = Checkpoint.Open(Path.Combine(MgmTiny, "model", "model.safetensors"));
        var config = ClipVisionConfig.Load(Path.Combine(ClipTiny, "config.json"));
        var e = Assert.Throws<ModelLoadException>(() => ClipVisionTransformer.Load(source, config));
        Assert.Contains("no CLIP vision tower found", e.Message);
        Assert.Throws<ModelLoadException>(() => ClipVisionTransformer.FromPretrained(Path.Combine(MgmTiny, "openclip-convnext")));
    }

    [Fact]
    public void Forwards_leave_no_live_tensors_behind()
    {
        using var encoder = ClipVisionTransformer.FromPretrained(ClipTiny);
        using var pixels = randn(2, 3, 56, 56);
        using (encoder.SelectFeatures(pixels)) { } // warm-up

        DisposeScopeManager.Statistics.Reset();
        for (int i = 0; i < 4; i++)
        {
            using (encoder.SelectFeatures(pixels)) { }
            using (encoder.Forward(pixels, outputHiddenStates: true)) { }
            Assert.Equal(0, VisionTestFiles.LiveTensors);
        }
        var kept = encoder.SelectFeatures(pixels);
        Assert.Equal(1, VisionTestFiles.LiveTensors); // the statistics do see a tensor that outlives the call
        kept.Dispose();
        Assert.Equal(0, VisionTestFiles.LiveTensors);
    }

    [Fact]
    public void ViT_L_14_336_has_HF_keys_and_shapes()
    {
        var config = new ClipVisionConfig { HiddenSize = 1024, IntermediateSize = 4096, NumHiddenLayers = 24, NumAttentionHeads = 16, ImageSize = 336, PatchSize = 14 };
        var shapes = VisionTestFiles.MetaShapes(() => new ClipVisionTransformer(config));
        Assert.Equal(3 + 2 + 24 * 16 + 2, shapes.Count);
        Assert.Equal([1024L], shapes["embeddings.class_embedding"]);
        Assert.Equal([1024L, 3, 14, 14], shapes["embeddings.patch_embedding.weight"]);
        Assert.Equal([577L, 1024], shapes["embeddings.position_embedding.weight"]);
        Assert.Equal([4096L, 1024], shapes["encoder.layers.23.mlp.fc1.weight"]);
        Assert.Equal([1024L, 1024], shapes["encoder.layers.0.self_attn.q_proj.weight"]);
        Assert.Contains("pre_layrnorm.weight", shapes.Keys);
        Assert.Contains("post_layernorm.bias", shapes.Keys);
        Assert.DoesNotContain("embeddings.position_ids", shapes.Keys);
    }
}
