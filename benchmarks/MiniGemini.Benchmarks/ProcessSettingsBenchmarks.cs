using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Jobs;
using MiniGemini.Training;
using MiniGemini.Training.DetailShapes;

namespace MiniGemini.Benchmarks;

/// <summary>
/// libtorch on 4 KiB pages (<c>THP_MEM_ALLOC_ENABLE=0</c>, the baseline) against transparent huge pages (what the library
/// asks for at load), each in its own process, on the bundled demo model with the default threads.
/// </summary>
[Config(typeof(Config))]
public class HugePagesBenchmarks : DemoModelWorkloads
{
    sealed class Config : ManualConfig
    {
        public Config()
        {
            AddJob(Job.WithEnvironmentVariables(new EnvironmentVariable("THP_MEM_ALLOC_ENABLE", "0")).WithId("4 KiB pages").AsBaseline());
            AddJob(Job.WithEnvironmentVariables(new EnvironmentVariable("THP_MEM_ALLOC_ENABLE", "1")).WithId("huge pages"));
        }
    }
}

/// <summary>
/// libgomp's default spin before an idle OpenMP worker sleeps (<c>GOMP_SPINCOUNT=300000</c>, the baseline) against the
/// shorter spin the library asks for at load (10 000), each in its own process, on the bundled demo model.
/// </summary>
[Config(typeof(Config))]
public class OpenMpSpinBenchmarks : DemoModelWorkloads
{
    sealed class Config : ManualConfig
    {
        public Config()
        {
            AddJob(Job.WithEnvironmentVariables(new EnvironmentVariable("GOMP_SPINCOUNT", "300000")).WithId("spin 300000").AsBaseline());
            AddJob(Job.WithEnvironmentVariables(new EnvironmentVariable("GOMP_SPINCOUNT", "10000")).WithId("spin 10000"));
        }
    }
}

/// <summary>
/// Two workloads of the bundled demo model, for suites that compare process-wide settings (one job per setting):
/// one step of the vision stage (forward and backward of 8 pictures with their cell labels and mining focus) and a
/// described picture.
/// </summary>
public abstract class DemoModelWorkloads
{
    /// <summary>One launch, 2 warm-up and 6 measured iterations of one invocation each.</summary>
    protected static Job Job => Job.Default.WithLaunchCount(1).WithWarmupCount(2).WithIterationCount(6).WithInvocationCount(1).WithUnrollFactor(1);

    MiniGeminiModel _model = null!;
    MiniGeminiTrainer _trainer = null!;
    IReadOnlyList<TrainingSample> _batch = null!;
    MiniGeminiPrompt _describe = null!;

    /// <summary>Loads the bundled model and prepares a vision-stage trainer and its batch.</summary>
    [GlobalSetup]
    public void Setup()
    {
        var folder = Path.Combine(ConversationBenchmarks.RepositoryRoot(), "samples", "MiniGemini.Cli", "DefaultModel");
        _model = MiniGeminiBuilder.FromPretrained(Path.Combine(folder, "detail-shapes-mgm")).Build();
        _trainer = new MiniGeminiTrainer(_model, new TrainingOptions { Stage = TrainingStage.Vision, TokenLabelClasses = DetailShapesTraining.TokenLabelClasses });
        var data = new DetailShapesTraining(seed: 3);
        _batch = Enumerable.Range(0, 8).Select(i => data.VisionSample(i)).ToList();
        _describe = MiniGeminiPrompt.Ask(QuestionWriter.DescribeQuestion, ImageInput.FromFile(Path.Combine(folder, "example.png")));
    }

    /// <summary>Forward and backward of one vision-stage batch (the gradients are zeroed after, the weights stay).</summary>
    [Benchmark]
    public double VisionStep()
    {
        _trainer.SetTraining(true);
        try
        {
            using var scope = TorchSharp.torch.NewDisposeScope();
            var loss = _trainer.Loss(_batch);
            loss.backward();
            return loss.item<float>();
        }
        finally
        {
            _trainer.SetTraining(false);
            foreach (var (_, p) in _model.Module.CheckpointParameters()) p.grad?.zero_();
        }
    }

    /// <summary>The bundled example picture described (greedy, the whole answer).</summary>
    [Benchmark]
    public int Describe() => _model.Generate(_describe).TokenIds.Count;

    /// <summary>Releases trainer and model.</summary>
    [GlobalCleanup]
    public void Cleanup()
    {
        _trainer.Dispose();
        _model.Dispose();
    }
}
