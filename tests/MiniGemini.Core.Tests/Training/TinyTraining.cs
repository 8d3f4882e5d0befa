using MiniGemini.Text;
using MiniGemini.Training;
using MiniGemini.Training.DetailShapes;
using Xunit;

namespace MiniGemini.Tests.Training;

/// <summary>The tiny Detail Shapes model the training tests train: created fresh, loaded with the vicuna template.</summary>
static class TinyTraining
{
    public static readonly ModelBlueprint Blueprint = new()
    {
        LrImageSize = 56, PatchSize = 28, VisionWidth = 32, VisionLayers = 1, VisionHeads = 2, HrImageSize = 224, AuxDims = [8, 16, 16, 16],
        Hidden = 64, Layers = 2, Heads = 2, Intermediate = 128,
    };

    /// <summary>Writes a new model (seed 3) to a fresh folder under <paramref name="root"/> and returns the folder.</summary>
    public static string NewModel(string root, ModelBlueprint? blueprint = null)
    {
        var folder = Path.Combine(root, "initial-" + Guid.NewGuid().ToString("N")[..8]);
        (blueprint ?? Blueprint).Create(folder, DetailShapesTraining.TokenizerCorpus(ConversationTemplate.VicunaV1), seed: 3);
        return folder;
    }

    public static MiniGeminiModel Load(string folder) => MiniGeminiBuilder.FromPretrained(folder).WithTemplate("vicuna_v1").Build();

    /// <summary>
    /// Trains <paramref name="initial"/> for <see cref="TrainingOptions.Steps"/> (8, checkpoints every 5) once straight
    /// and once cancelled at step 7 then resumed in the same output folder; asserts equal losses (1e-4) and returns
    /// the resumed model and its output folder. The resumed run reports steps 6 to 8, started at step 5.
    /// </summary>
    public static (MiniGeminiModel Resumed, string Output) AssertResumesAsUninterrupted(string root, string initial, TrainingOptions options,
        Func<long, TrainingSample> sampleAt)
    {
        IReadOnlyList<double> straight;
        using (var model = Load(initial))
        using (var trainer = new MiniGeminiTrainer(model, options))
            straight = trainer.Train(sampleAt, Path.Combine(root, "straight"));

        var output = Path.Combine(root, "interrupted");
        using (var model = Load(initial))
        using (var trainer = new MiniGeminiTrainer(model, options))
        using (var cancel = new CancellationTokenSource())
        {
            var progress = new TrainingReports(p => { if (p.Step == 7) cancel.Cancel(); });
            Assert.ThrowsAny<OperationCanceledException>(() => trainer.Train(sampleAt, output, progress, cancel.Token));
        }
        Assert.True(Directory.Exists(Path.Combine(output, "checkpoint")), "the checkpoint of step 5 is kept");

        var resumedModel = Load(Path.Combine(output, "checkpoint"));
        IReadOnlyList<double> resumed;
        var reports = new List<TrainingProgress>();
        using (var trainer = new MiniGeminiTrainer(resumedModel, options))
            resumed = trainer.Train(sampleAt, output, new TrainingReports(reports.Add));
        Assert.Equal([6, 7, 8], reports.Select(p => p.Step));
        Assert.All(reports, p => Assert.Equal(5, p.StartStep));

        Assert.Equal(straight.Count, resumed.Count);
        for (int i = 0; i < straight.Count; i++)
            Assert.True(Math.Abs(straight[i] - resumed[i]) <= 1e-4 * Math.Max(1, straight[i]), $"step {i + 1}: {straight[i]} uninterrupted, {resumed[i]} resumed");
        return (resumedModel, output);
    }
}

/// <summary>An <see cref="IProgress{T}"/> that reports synchronously, on the training thread.</summary>
sealed class TrainingReports(Action<TrainingProgress> report) : IProgress<TrainingProgress>
{
    public void Report(TrainingProgress value) => report(value);
}
