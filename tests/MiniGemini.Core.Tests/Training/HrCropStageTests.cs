using MiniGemini.Training;
using MiniGemini.Training.DetailShapes;
using SixLabors.ImageSharp;
using SixLabors.ImageSharp.PixelFormats;
using Xunit;

namespace MiniGemini.Tests.Training;

/// <summary>
/// The HR-crop stage (the ConvNeXt alone learns crop labels through a head on its pooled fused map): what learns,
/// that it learns, refused input, and the Detail Shapes crops.
/// </summary>
public sealed class HrCropStageTests : IDisposable
{
    readonly string _root = Path.Combine(Path.GetTempPath(), "mgm-crops-" + Guid.NewGuid().ToString("N"));

    static TrainingOptions Options(int steps) => new()
    {
        Stage = TrainingStage.HrCrops, TokenLabelClasses = DetailShapesTraining.CropLabelClasses,
        Steps = steps, BatchSize = 8, LearningRate = 3e-3, WarmupSteps = 2, CheckpointEvery = 0,
    };

    /// <summary>40 steps on 8 crops of seed 5, in turn; the mean loss of the first and of the last 3 steps.</summary>
    (MiniGeminiTrainer Trainer, List<TrainingSample> Crops, double First, double Last) TrainOnEightCrops(MiniGeminiModel model,
        Func<DetailShapesTraining, long, TrainingSample> crop)
    {
        var data = new DetailShapesTraining(seed: 5);
        var crops = Enumerable.Range(0, 8).Select(i => crop(data, i)).ToList();
        var trainer = new MiniGeminiTrainer(model, Options(40));
        try
        {
            var losses = trainer.Train(i => crops[(int)(i % crops.Count)], Path.Combine(_root, "run"));
            return (trainer, crops, losses.Take(3).Average(), losses.TakeLast(3).Average());
        }
        catch
        {
            trainer.Dispose();
            throw;
        }
    }

    [Fact]
    public void The_hr_tower_alone_learns_the_digits_of_a_few_crops_by_heart()
    {
        using var model = TinyTraining.Load(TinyTraining.NewModel(_root));
        var before = model.Module.CheckpointParameters().ToDictionary(x => x.Key, x => x.Parameter.detach().clone());
        var (trainer, crops, first, last) = TrainOnEightCrops(model, (data, i) => data.HrCropSample(i));
        using var _ = trainer;
        Assert.True(last < 0.5 * first, $"loss went from {first:0.000} (first 3 steps) to {last:0.000} (last 3)");
        Assert.True(trainer.TokenLabelAccuracy(crops)[0] >= 0.75, "the crops it trained on are not learned");
        foreach (var (key, p) in model.Module.CheckpointParameters())
        {
            bool same = p.equal(before[key]).all().item<bool>();
            if (key.StartsWith(TrainingStage.AuxVisionTowerPrefix, StringComparison.Ordinal)) Assert.False(same && p.dim() >= 2, $"{key} learns on crops but did not change");
            else Assert.True(same, $"{key} is frozen on crops but changed");
        }
        using var saved = TinyTraining.Load(Path.Combine(_root, "run"));
        Assert.Equal(before.Keys.Order(), saved.Module.CheckpointParameters().Select(x => x.Key).Order()); // the head is not saved
    }

    [Fact]
    public void Crops_with_a_focus_box_are_learned_through_an_attention_that_the_focus_term_pulls_onto_the_digit()
    {
        using var model = TinyTraining.Load(TinyTraining.NewModel(_root));
        var (trainer, crops, first, last) = TrainOnEightCrops(model, (data, i) => data.HrCropSampleWithFocus(i));
        using var _ = trainer;

        // The focus term starts near log(256 positions / 8 in the box) and falls more slowly than the labels' term.
        Assert.True(last < 0.8 * first, $"loss went from {first:0.000} (first 3 steps) to {last:0.000} (last 3)");
        Assert.True(trainer.TokenLabelAccuracy(crops)[0] >= 0.75, "the crops it trained on are not learned");
        var mixed = Assert.Throws<TrainingDataException>(() => trainer.Loss([crops[0], new DetailShapesTraining(seed: 5).HrCropSample(1)]));
        Assert.Contains("with and without a focus box", mixed.Message);
    }

    [Fact]
    public void Crops_of_two_sizes_and_models_without_an_hr_tower_are_refused()
    {
        using var model = TinyTraining.Load(TinyTraining.NewModel(_root));
        using var trainer = new MiniGeminiTrainer(model, Options(1) with { BatchSize = 2 });
        var data = new DetailShapesTraining(seed: 2);
        var whole = data.VisionSample(0) with { Name = "whole-picture", TokenLabels = [[3]] };
        var e = Assert.Throws<TrainingDataException>(() => trainer.Train(i => i == 0 ? data.HrCropSample(0) : whole, Path.Combine(_root, "mixed")));
        Assert.Contains("whole-picture", e.Message);
        Assert.Contains("one size", e.Message);

        using var lrOnly = TinyTraining.Load(TinyTraining.NewModel(_root, TinyTraining.Blueprint with { AuxDims = null }));
        var refused = Assert.Throws<MiniGeminiTrainingException>(() => new MiniGeminiTrainer(lrOnly, Options(1)));
        Assert.Contains("hr-crops", refused.Message);
    }

    [Fact]
    public void A_detail_shapes_crop_holds_the_whole_digit_it_is_labelled_with()
    {
        var data = new DetailShapesTraining(seed: 11);
        for (int index = 0; index < 24; index++)
        {
            var sample = data.HrCropSample(index);
            Assert.Equal(sample.Image!.Bytes.ToArray(), data.HrCropSample(index).Image!.Bytes.ToArray()); // a pure function of (seed, index)
            int digit = Assert.Single(Assert.Single(sample.TokenLabels!));
            using var crop = Image.Load<Rgb24>(sample.Image.Bytes.ToArray());
            Assert.Equal((DetailShapesTraining.CropSize, DetailShapesTraining.CropSize), (crop.Width, crop.Height));
            var ink = new List<(int X, int Y)>();
            for (int y = 0; y < crop.Height; y++)
                for (int x = 0; x < crop.Width; x++)
                    if (crop[x, y].Equals(ShapeColor.White) || crop[x, y].Equals(ShapeColor.Black)) ink.Add((x, y));
            // The digit box starts at the leftmost lit column: 6 for a 1 (segments b and c only), 0 for every other digit.
            int left = ink.Min(p => p.X) - (digit == 1 ? 6 : 0), top = ink.Min(p => p.Y);
            Assert.InRange(left, 0, DetailShapesTraining.CropSize - SevenSegment.Width);
            Assert.InRange(top, 0, DetailShapesTraining.CropSize - SevenSegment.Height);
            var lit = ink.ToHashSet();
            for (int row = 0; row < SevenSegment.Height; row++)
                for (int column = 0; column < SevenSegment.Width; column++)
                    Assert.Equal(SevenSegment.IsLit(digit, column, row), lit.Contains((left + column, top + row)));
            Assert.Equal(ink.Count, lit.Count(p => p.X - left is >= 0 and < SevenSegment.Width && p.Y - top is >= 0 and < SevenSegment.Height));
            var box = Assert.Single(data.HrCropSampleWithFocus(index).MiningFocus!);
            Assert.Equal(new FocusBox(left / 64.0, top / 64.0, 8 / 64.0, 14 / 64.0), box);
        }
    }

    public void Dispose()
    {
        if (Directory.Exists(_root)) Directory.Delete(_root, recursive: true);
    }
}
