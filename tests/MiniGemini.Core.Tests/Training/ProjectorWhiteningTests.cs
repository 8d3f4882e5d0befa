using MiniGemini.Training;
using MiniGemini.Training.DetailShapes;
using Xunit;
using static TorchSharp.torch;

namespace MiniGemini.Tests.Training;

/// <summary><see cref="MiniGeminiTrainer.WhitenProjectorInput"/>: what the projector makes of the calibration tokens afterwards, and refused calls.</summary>
public sealed class ProjectorWhiteningTests : IDisposable
{
    readonly string _root = Path.Combine(Path.GetTempPath(), "mgm-whitening-" + Guid.NewGuid().ToString("N"));

    static TrainingOptions Language => new() { Stage = TrainingStage.LanguageModel, Steps = 1, CheckpointEvery = 0 };

    static List<ImageInput> Pictures(int count) => Enumerable.Range(0, count).Select(i => new DetailShapesTraining(seed: 6).VisionSample(i).Image!).ToList();

    [Fact]
    public void Whitened_projector_maps_the_calibration_tokens_to_its_bias_on_average_with_the_covariance_of_its_weights_through_the_damped_identity_at_their_scale()
    {
        using var model = TinyTraining.Load(TinyTraining.NewModel(_root));
        using var trainer = new MiniGeminiTrainer(model, Language);
        var pictures = Pictures(40);
        using var scope = NewDisposeScope();
        var projector = model.Module.CheckpointParameters().Where(x => x.Key.StartsWith(TrainingStage.ProjectorPrefix, StringComparison.Ordinal)).ToDictionary(x => x.Key, x => x.Parameter);
        var weight = projector["model.mm_projector.weight"].detach().to(float64).clone();  // [H, D]
        var bias = projector["model.mm_projector.bias"].detach().to(float64).clone();      // [H]
        Tensor Tokens()
        {
            using var mode = no_grad();
            return model.Module.EncodeUnprojected(model.Processor.PreprocessImages(pictures)).flatten(0, 1).to(float64); // [M, D]
        }
        var tokens = Tokens();
        const double ridge = 0.01;

        trainer.WhitenProjectorInput(pictures, ridge);

        Tensor projected;
        using (no_grad()) projected = model.Module.Projector.call(Tokens().to(float32)).to(float64); // [M, H]
        var centred = tokens - tokens.mean([0]);
        var covariance = centred.t().matmul(centred) / (tokens.shape[0] - 1);                  // [D, D]
        var damping = ridge * linalg.eigvalsh(covariance).clamp_min(0).mean();
        // Σ (Σ + cI)⁻¹, the covariance of the whitened tokens before their scaling, by a solve rather than the
        // eigendecomposition the trainer uses; the scale α² makes their mean square that of the tokens.
        var damped = linalg.solve(covariance + damping * eye(covariance.shape[0], dtype: float64), covariance);
        long count = tokens.shape[0];
        var alphaSquared = tokens.square().sum([1]).mean() / (damped.trace() * (count - 1) / count);
        var expected = alphaSquared * weight.matmul(damped).matmul(weight.t());                // [H, H]
        var projectedCentred = projected - projected.mean([0]);
        var actual = projectedCentred.t().matmul(projectedCentred) / (count - 1);
        double scale = expected.abs().max().item<double>(), error = (actual - expected).abs().max().item<double>();
        Assert.True(error <= 1e-3 * scale, $"covariance off by {error:E2} (largest entry {scale:E2})");
        Assert.True((projected.mean([0]) - bias).abs().max().item<double>() <= 1e-4 * Math.Max(1, bias.abs().max().item<double>()), "the calibration tokens' mean maps to the old bias");
    }

    [Fact]
    public void Whitening_is_refused_with_too_few_tokens_or_a_ridge_that_is_not_positive()
    {
        using var model = TinyTraining.Load(TinyTraining.NewModel(_root));
        using var trainer = new MiniGeminiTrainer(model, Language);
        var e = Assert.Throws<MiniGeminiTrainingException>(() => trainer.WhitenProjectorInput(Pictures(2)));
        Assert.Contains("8 image tokens cannot whiten tokens of width 32", e.Message);
        Assert.Throws<ArgumentOutOfRangeException>(() => trainer.WhitenProjectorInput(Pictures(20), ridge: 0));
        Assert.Throws<ArgumentOutOfRangeException>(() => trainer.WhitenProjectorInput(Pictures(20), ridge: double.NaN));
    }

    public void Dispose()
    {
        if (Directory.Exists(_root)) Directory.Delete(_root, recursive: true);
    }
}
