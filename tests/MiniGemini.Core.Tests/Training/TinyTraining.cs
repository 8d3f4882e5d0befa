using MiniGemini.Text;
using MiniGemini.Training;
using MiniGemini.Training.DetailShapes;

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
}

/// <summary>An <see cref="IProgress{T}"/> that reports synchronously, on the training thread.</summary>
sealed class TrainingReports(Action<TrainingProgress> report) : IProgress<TrainingProgress>
{
    public void Report(TrainingProgress value) => report(value);
}
