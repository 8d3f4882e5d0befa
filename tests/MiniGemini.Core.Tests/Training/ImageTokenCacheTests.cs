using MiniGemini.Training;
using MiniGemini.Training.DetailShapes;
using TorchSharp;
using Xunit;

namespace MiniGemini.Tests.Training;

/// <summary>
/// Stage 2 with frozen vision (finetune-language) on a stream that repeats pictures: kept image tokens give the run
/// it would have had without them, and stages that change the tokens cannot keep them.
/// </summary>
public sealed class ImageTokenCacheTests : IDisposable
{
    readonly string _root = Path.Combine(Path.GetTempPath(), "mgm-cache-" + Guid.NewGuid().ToString("N"));

    static TrainingOptions Options(int cacheSize) => new()
    {
        Stage = TrainingStage.FinetuneLanguage, Steps = 6, BatchSize = 4, LearningRate = 3e-3, WarmupSteps = 2, CheckpointEvery = 0,
        ImageTokenCacheSize = cacheSize,
    };

    IReadOnlyList<double> Run(string initial, TrainingOptions options, string name, Action<MiniGeminiModel>? after = null)
    {
        using var model = TinyTraining.Load(initial);
        using var trainer = new MiniGeminiTrainer(model, options);
        var losses = trainer.Train(new DetailShapesTraining(seed: 4, maxExchanges: 3, pictures: 5).Sample, Path.Combine(_root, name));
        after?.Invoke(model);
        return losses;
    }

    [Fact]
    public void Kept_image_tokens_give_the_losses_of_a_run_that_encodes_every_picture()
    {
        var initial = TinyTraining.NewModel(_root);
        var encoded = Run(initial, Options(0), "encoded");
        var kept = Run(initial, Options(64), "kept");
        // A cache smaller than the pictures in turn evicts and encodes again, with the same result.
        var evicting = Run(initial, Options(4), "evicting");
        Assert.Equal(encoded.Count, kept.Count);
        for (int i = 0; i < encoded.Count; i++)
        {
            Assert.Equal(encoded[i], kept[i], 1e-5);
            Assert.Equal(encoded[i], evicting[i], 1e-5);
        }
    }

    [Fact]
    public void The_cache_owns_copies_releases_the_oldest_when_full_and_everything_on_dispose()
    {
        long before = Vision.VisionTestFiles.LiveTensors;
        using (var cache = new ImageTokenCache(capacity: 2))
        {
            using (var scope = torch.NewDisposeScope())
                for (int i = 0; i < 3; i++) cache.Add($"picture {i}", torch.full([2, 3], i, dtype: torch.ScalarType.Float32));
            Assert.Equal(2, cache.Count);
            Assert.False(cache.TryGet("picture 0", out _));
            Assert.Equal(before + 2, Vision.VisionTestFiles.LiveTensors);
            Assert.True(cache.TryGet("picture 2", out var kept));
            using var element = kept[1, 2];
            Assert.Equal(2f, element.item<float>()); // a copy that outlived the scope of the tensor it was made from
        }
        Assert.Equal(before, Vision.VisionTestFiles.LiveTensors);
    }

    [Fact]
    public void Stages_that_train_towers_or_mining_cannot_keep_image_tokens()
    {
        using var model = TinyTraining.Load(TinyTraining.NewModel(_root));
        foreach (var stage in new[] { TrainingStage.Finetune, TrainingStage.Full, TrainingStage.FinetuneLanguage.WithTowers(visionTower: false) })
        {
            var e = Assert.Throws<ArgumentException>(() => new MiniGeminiTrainer(model, Options(8) with { Stage = stage }));
            Assert.Contains("ImageTokenCacheSize", e.Message);
            Assert.Contains(stage.Name, e.Message);
        }
        Assert.False(TrainingStage.FinetuneLanguage.TrainsVision);
        Assert.True(new TrainingStage { Name = "all", TrainablePrefixes = ["model."] }.TrainsVision);
    }

    [Fact]
    public void A_stream_of_n_pictures_asks_new_questions_about_the_same_scenes_in_turn()
    {
        var data = new DetailShapesTraining(seed: 8, pictures: 3);
        var withImages = Enumerable.Range(0, 60).Select(i => (Index: (long)i, Sample: data.Sample(i))).Where(x => x.Sample.Image is not null).ToList();
        var byPicture = withImages.GroupBy(x => x.Index % 3).ToList();
        Assert.Equal(3, byPicture.Count);
        foreach (var group in byPicture)
            Assert.Single(group.Select(x => Convert.ToHexString(x.Sample.Image!.Bytes.Span)).Distinct());
        Assert.Equal(3, withImages.Select(x => Convert.ToHexString(x.Sample.Image!.Bytes.Span)).Distinct().Count());
        Assert.True(withImages.Select(x => string.Join("|", x.Sample.Exchanges.Select(e => e.User))).Distinct().Count() > 10, "the questions do not vary");
    }

    public void Dispose()
    {
        if (Directory.Exists(_root)) Directory.Delete(_root, recursive: true);
    }
}
