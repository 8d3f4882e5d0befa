using MiniGemini.Text;
using MiniGemini.Training;
using MiniGemini.Training.DetailShapes;
using Xunit;

namespace MiniGemini.Tests.Training;

/// <summary>Short runs of a tiny Detail Shapes model: the loss falls, runs resume exactly, bad input is refused by name.</summary>
public sealed class TrainingRunTests : IDisposable
{
    readonly string _root = Path.Combine(Path.GetTempPath(), "mgm-train-" + Guid.NewGuid().ToString("N"));

    string NewModel(ModelBlueprint? blueprint = null) => TinyTraining.NewModel(_root, blueprint);

    static MiniGeminiModel Load(string folder) => TinyTraining.Load(folder);

    static TrainingOptions Options(int steps) => new()
    {
        Stage = TrainingStage.Full, Steps = steps, BatchSize = 4, LearningRate = 3e-3, WarmupSteps = 3, CheckpointEvery = 5,
    };

    [Fact]
    public void Thirty_steps_of_a_tiny_model_lower_the_loss()
    {
        using var model = Load(NewModel());
        using var trainer = new MiniGeminiTrainer(model, Options(30));
        var losses = trainer.Train(new DetailShapesTraining(seed: 5).Sample, Path.Combine(_root, "run"));

        Assert.Equal(30, losses.Count);
        double first = losses.Take(5).Average(), last = losses.TakeLast(5).Average();
        Assert.True(last < 0.7 * first, $"loss went from {first:0.000} (first 5 steps) to {last:0.000} (last 5)");
    }

    [Fact]
    public void A_cancelled_run_resumes_from_its_checkpoint_and_ends_where_an_uninterrupted_one_does()
    {
        var (resumed, output) = TinyTraining.AssertResumesAsUninterrupted(_root, NewModel(), Options(8), new DetailShapesTraining(seed: 9).Sample);
        using var resumedModel = resumed;
        // What was saved loads unchanged: every tensor equals the trained one.
        using var saved = Load(output);
        var trainedTensors = resumedModel.Module.CheckpointParameters().ToDictionary(x => x.Key, x => x.Parameter);
        foreach (var (key, p) in saved.Module.CheckpointParameters())
            Assert.True(p.equal(trainedTensors[key]).all().item<bool>(), $"{key} differs after saving and loading");
        Assert.Equal(trainedTensors.Count, saved.Module.CheckpointParameters().Count());
    }

    [Fact]
    public void An_output_folder_that_holds_something_else_is_refused()
    {
        var output = Directory.CreateDirectory(Path.Combine(_root, "taken")).FullName;
        File.WriteAllText(Path.Combine(output, "notes.txt"), "mine");
        using var model = Load(NewModel());
        using var trainer = new MiniGeminiTrainer(model, Options(2));
        var e = Assert.Throws<MiniGeminiTrainingException>(() => trainer.Train(new DetailShapesTraining(1).Sample, output));
        Assert.Contains(output, e.Message);
    }

    [Fact]
    public void Bad_samples_are_refused_naming_the_sample()
    {
        using var model = Load(NewModel());
        using var trainer = new MiniGeminiTrainer(model, Options(1) with { BatchSize = 1 });
        var image = ImageInput.FromBytes(SceneRenderer.RenderPng(new SceneSampler(2).Next()));
        void Refused(TrainingSample sample, string words)
        {
            var e = Assert.Throws<TrainingDataException>(() => trainer.Train(_ => sample, Path.Combine(_root, Guid.NewGuid().ToString("N"))));
            Assert.Equal(sample.Name, e.Sample);
            Assert.Contains(words, e.Message);
        }
        Refused(new TrainingSample(image, [new ChatExchange("How many shapes are there?", "")], Name: "no-answer"), "no answer");
        Refused(new TrainingSample(image, [], Name: "empty"), "no exchanges");
        var chatty = Enumerable.Repeat(new ChatExchange("Describe the picture in every detail you can see.", "There are 4 shapes."), 60).ToList();
        Refused(new TrainingSample(image, chatty, Name: "too-long"), "context holds");
        Refused(new TrainingSample(ImageInput.FromBytes(new byte[] { 0x89, 0x50, 0x4E, 0x47, 1, 2, 3 }, "broken.png"),
            [new ChatExchange("How many shapes are there?", "1")], Name: "broken"), "does not decode");
    }

    public void Dispose()
    {
        if (Directory.Exists(_root)) Directory.Delete(_root, recursive: true);
    }
}
