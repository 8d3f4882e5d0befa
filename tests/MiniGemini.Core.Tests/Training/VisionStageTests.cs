using MiniGemini.Text;
using MiniGemini.Training;
using MiniGemini.Training.DetailShapes;
using SixLabors.ImageSharp;
using SixLabors.ImageSharp.PixelFormats;
using Xunit;

namespace MiniGemini.Tests.Training;

/// <summary>
/// The vision stage (towers and mining learn per-token labels through a head that is not part of the model): what
/// learns, what is saved, resumption, refused input, and the Detail Shapes labels.
/// </summary>
public sealed class VisionStageTests : IDisposable
{
    readonly string _root = Path.Combine(Path.GetTempPath(), "mgm-vision-" + Guid.NewGuid().ToString("N"));

    string NewModel(ModelBlueprint? blueprint = null) => TinyTraining.NewModel(_root, blueprint);

    static MiniGeminiModel Load(string folder) => TinyTraining.Load(folder);

    static TrainingOptions Options(int steps) => new()
    {
        Stage = TrainingStage.Vision, TokenLabelClasses = DetailShapesTraining.TokenLabelClasses,
        Steps = steps, BatchSize = 4, LearningRate = 3e-3, WarmupSteps = 3, CheckpointEvery = 5,
    };

    [Fact]
    public void Thirty_steps_teach_the_towers_and_leave_projector_and_llm_as_they_were()
    {
        var initial = NewModel();
        using var model = Load(initial);
        var before = model.Module.CheckpointParameters().ToDictionary(x => x.Key, x => x.Parameter.detach().clone());
        var data = new DetailShapesTraining(seed: 5);
        using var trainer = new MiniGeminiTrainer(model, Options(30));
        var heldOut = Enumerable.Range(0, 32).Select(i => new DetailShapesTraining(seed: 6).VisionSample(i)).ToList();
        var chance = trainer.TokenLabelAccuracy(heldOut);
        var losses = trainer.Train(data.VisionSample, Path.Combine(_root, "run"));
        var accuracy = trainer.TokenLabelAccuracy(heldOut);

        double first = losses.Take(5).Average(), last = losses.TakeLast(5).Average();
        Assert.True(last < 0.8 * first, $"loss went from {first:0.000} (first 5 steps) to {last:0.000} (last 5)");
        // Colour is the attribute a 56-pixel view shows best: the towers learn it well past chance (1/6).
        Assert.True(accuracy[2] >= 0.5 && accuracy[2] > chance[2] + 0.2, $"colour accuracy {chance[2]:P0} before, {accuracy[2]:P0} after");
        foreach (var (key, p) in model.Module.CheckpointParameters())
        {
            bool same = p.equal(before[key]).all().item<bool>();
            if (TrainingStage.Vision.Trains(key)) Assert.False(same && p.dim() >= 2, $"{key} learns in the vision stage but did not change");
            else Assert.True(same, $"{key} is frozen in the vision stage but changed");
        }
        using var saved = Load(Path.Combine(_root, "run"));
        Assert.Equal(before.Keys.Order(), saved.Module.CheckpointParameters().Select(x => x.Key).Order()); // the head is not saved
    }

    [Fact]
    public void The_mining_focus_term_moves_mining_attention_onto_the_digits_and_without_it_the_attention_stays_spread()
    {
        var heldOut = Enumerable.Range(0, 16).Select(i => new DetailShapesTraining(seed: 8).VisionSample(i)).ToList();
        double Share(double weight, out double before)
        {
            using var model = Load(NewModel());
            using var trainer = new MiniGeminiTrainer(model, Options(15) with { Stage = TrainingStage.VisionMining, MiningFocusWeight = weight });
            before = trainer.MiningFocusShare(heldOut);
            trainer.Train(new DetailShapesTraining(seed: 7).VisionSample, Path.Combine(_root, $"focus-{weight}"));
            return trainer.MiningFocusShare(heldOut);
        }
        double focused = Share(1.0, out double initial), unfocused = Share(0.0, out _);
        // A digit box covers about 3 of the 28×28 HR features of a token's region in the tiny model: 0.4 % at random.
        Assert.InRange(initial, 0.001, 0.02);
        Assert.True(focused > 5 * initial && focused > 2 * unfocused, $"attention on the digit: {initial:P2} at initialisation, {focused:P2} after 15 steps with the focus term, {unfocused:P2} without");
    }

    [Fact]
    public void Mining_focus_boxes_that_do_not_fit_are_refused_naming_the_sample()
    {
        using var model = Load(NewModel());
        using var trainer = new MiniGeminiTrainer(model, Options(1) with { BatchSize = 1 });
        var sample = new DetailShapesTraining(seed: 3).VisionSample(0);
        var box = new FocusBox(0.1, 0.1, 0.05, 0.05);                                     // inside the top left quadrant
        void Refused(IReadOnlyList<FocusBox?> focus, string name, string words)
        {
            var e = Assert.Throws<TrainingDataException>(() => trainer.Train(_ => sample with { MiningFocus = focus, Name = name }, Path.Combine(_root, name)));
            Assert.Equal(name, e.Sample);
            Assert.Contains(words, e.Message);
        }
        Refused([box, box, null, null], "box-in-another-quadrant", "image token 1 lies outside the token's HR region");
        Refused([box, null, null], "three-boxes", "3 boxes but the model makes 4 image tokens");
    }

    [Fact]
    public void A_cancelled_vision_run_resumes_with_its_head_and_ends_where_an_uninterrupted_one_does()
    {
        var (resumed, _) = TinyTraining.AssertResumesAsUninterrupted(_root, NewModel(), Options(8), new DetailShapesTraining(seed: 9).VisionSample);
        resumed.Dispose();
    }

    [Fact]
    public void Samples_without_fitting_token_labels_are_refused_naming_the_sample()
    {
        using var model = Load(NewModel());
        using var trainer = new MiniGeminiTrainer(model, Options(1) with { BatchSize = 1 });
        var image = ImageInput.FromBytes(SceneRenderer.RenderPng(new SceneSampler(2).Next()));
        int[] empty = [0, -100, -100, -100, 0];
        void Refused(TrainingSample sample, string words)
        {
            var e = Assert.Throws<TrainingDataException>(() => trainer.Train(_ => sample, Path.Combine(_root, Guid.NewGuid().ToString("N"))));
            Assert.Equal(sample.Name, e.Sample);
            Assert.Contains(words, e.Message);
        }
        Refused(new TrainingSample(image, [], Name: "unlabelled"), "no token labels");
        Refused(new TrainingSample(null, [], Name: "imageless", TokenLabels: [empty, empty, empty, empty]), "no image");
        Refused(new TrainingSample(image, [], Name: "three", TokenLabels: [empty, empty, empty]), "labels 3 image tokens but the model makes 4");
        Refused(new TrainingSample(image, [], Name: "short-row", TokenLabels: [empty, empty, empty, [0, -100]]), "image token 3 has 2 labels but there are 5 attributes");
        Refused(new TrainingSample(image, [], Name: "digit-12", TokenLabels: [empty, [1, 0, 0, 12, 1], empty, empty]), "label 12 is outside [0, 10)");
        Refused(new TrainingSample(image, [], Name: "nothing", TokenLabels: Enumerable.Repeat<IReadOnlyList<int>>([-100, -100, -100, -100, -100], 4).ToList()), "no token labels to learn");

        var e = Assert.Throws<ArgumentOutOfRangeException>(() => new MiniGeminiTrainer(model, Options(1) with { TokenLabelClasses = null }));
        Assert.Contains("TokenLabelClasses", e.Message);
    }

    [Fact]
    public void Detail_shapes_labels_name_what_each_cell_of_the_picture_holds()
    {
        var data = new DetailShapesTraining(seed: 11);
        for (int index = 0; index < 12; index++)
        {
            var sample = data.VisionSample(index);
            var again = data.VisionSample(index); // a pure function of (seed, index)
            Assert.Equal(sample.Image!.Bytes.ToArray(), again.Image!.Bytes.ToArray());
            Assert.Equal(sample.TokenLabels!.Select(l => string.Join(",", l)), again.TokenLabels!.Select(l => string.Join(",", l)));
            using var picture = Image.Load<Rgb24>(sample.Image!.Bytes.ToArray());
            var background = picture[0, 0];
            for (int cell = 0; cell < 4; cell++)
            {
                var labels = sample.TokenLabels![cell];
                var (x0, y0) = (224 * (cell % 2), 224 * (cell / 2));
                var fills = new Dictionary<Rgb24, int>();
                var (left, top, right, bottom) = (int.MaxValue, int.MaxValue, -1, -1);
                var rowWidths = new int[224];
                for (int y = y0; y < y0 + 224; y++)
                    for (int x = x0; x < x0 + 224; x++)
                    {
                        var p = picture[x, y];
                        if (p.Equals(background)) continue;
                        (left, top, right, bottom) = (Math.Min(left, x), Math.Min(top, y), Math.Max(right, x), Math.Max(bottom, y));
                        rowWidths[y - y0]++;
                        if (!p.Equals(ShapeColor.White) && !p.Equals(ShapeColor.Black)) fills[p] = fills.GetValueOrDefault(p) + 1;
                    }
                Assert.Equal(fills.Count == 0 ? 0 : 1, labels[0]);
                Assert.Equal(cell, labels[4]);
                if (labels[0] == 0)
                {
                    Assert.Equal([-100, -100, -100], labels.Skip(1).Take(3));
                    continue;
                }
                Assert.Equal(ShapeColor.All[labels[2]].Fill, Assert.Single(fills).Key);
                Assert.Equal(ShapeOf(rowWidths, right - left + 1, bottom - top + 1, top - y0), (ShapeKind)labels[1]);
                Assert.InRange(labels[3], 0, 9);
            }
        }
    }

    /// <summary>Tells the shapes apart by how much of their bounding box they fill and where their widest row is.</summary>
    static ShapeKind ShapeOf(int[] rowWidths, int width, int height, int top)
    {
        double fill = (double)rowWidths.Sum() / (width * height);
        if (fill > 0.9) return ShapeKind.Square;
        if (fill > 0.7) return ShapeKind.Circle;
        int widest = Array.IndexOf(rowWidths, rowWidths.Max()) - top;
        return widest > 0.8 * height ? ShapeKind.Triangle : ShapeKind.Diamond;
    }

    public void Dispose()
    {
        if (Directory.Exists(_root)) Directory.Delete(_root, recursive: true);
    }
}
