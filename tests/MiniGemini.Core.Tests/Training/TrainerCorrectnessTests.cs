using MiniGemini.Tests.Parity;
using MiniGemini.Tests.Pipeline;
using MiniGemini.Text;
using MiniGemini.Training;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace MiniGemini.Tests.Training;

/// <summary>The loss, its gradients and freezing, on the mgm-tiny fixture (towers, mining, projector, Llama LLM).</summary>
public sealed class TrainerCorrectnessTests
{
    const string Fixture = "reference/mgm-tiny";

    /// <summary>The fixture's prompt with the text after the image as the positions to learn (a mask that is not a prefix).</summary>
    static LabelledConversation FixtureRow(out int imageAt)
    {
        var ids = MgmFixture.Load(Fixture).InputIds;
        int image = Array.IndexOf(ids, ImageSlotTokenizer.ImageTokenIndex);
        imageAt = image;
        var labels = ids.Select((id, i) => i > image + 3 ? id : LabelledConversation.IgnoreIndex).ToArray();
        return new LabelledConversation(ids, labels);
    }

    [Fact]
    public void Masked_loss_equals_cross_entropy_of_the_fixture_logits_at_the_unmasked_positions()
    {
        using var model = MgmFixture.Load(Fixture).Build();
        using var io = FixtureIo.Open(MgmFixture.Load(Fixture).Folder);
        var row = FixtureRow(out int imageAt);
        int perImage = model.ImageTokensPerImage;

        using var loss = MiniGeminiTrainer.Loss(model, [row], io["pixel_values_hr"], Fixture);

        // Expected, from the PyTorch logits: position t predicts the label of t + 1, in the spliced sequence.
        var logits = io["logits"][0];                                                    // [T, V]
        var spliced = row.Labels.Take(imageAt).Concat(Enumerable.Repeat(LabelledConversation.IgnoreIndex, perImage)).Concat(row.Labels.Skip(imageAt + 1)).ToArray();
        Assert.Equal(logits.shape[0], spliced.Length);
        double sum = 0;
        int count = 0;
        var logProbs = logits.log_softmax(-1);
        for (int t = 0; t + 1 < spliced.Length; t++)
        {
            if (spliced[t + 1] == LabelledConversation.IgnoreIndex) continue;
            sum -= logProbs[t, spliced[t + 1]].item<float>();
            count++;
        }
        Assert.True(count > 10, $"only {count} positions are learned");
        double expected = sum / count, actual = loss.item<float>();
        Assert.True(Math.Abs(actual - expected) <= 1e-4 * Math.Max(1, Math.Abs(expected)), $"loss {actual} vs {expected} from the fixture's logits");
    }

    [Fact]
    public void Labels_cover_exactly_the_answers_and_their_end_of_turn_token()
    {
        using var model = MgmFixture.Load(Fixture).Build();
        var sample = new TrainingSample(ImageInput.FromFile(TinyModelFixture.ImagePath),
            [new ChatExchange("What is it?", "A cat."), new ChatExchange("And the colour?", "Grey.")]);
        var row = LabelledConversation.Create(sample, model.Tokenizer, model.Template);

        var learned = row.Ids.Where((_, i) => row.Labels[i] != LabelledConversation.IgnoreIndex).ToArray();
        Assert.Equal("A cat.</s> Grey.</s>", model.Tokenizer.Decode(learned, skipSpecialTokens: false));
        Assert.Equal(2, learned.Count(id => id == model.Tokenizer.EosId));
        Assert.Equal(1, ImageSlotTokenizer.CountImages(row.Ids));
        Assert.Equal(LabelledConversation.IgnoreIndex, row.Labels[Array.IndexOf(row.Ids, ImageSlotTokenizer.ImageTokenIndex)]);
    }

    [Fact]
    public void Gradients_of_every_trainable_tensor_match_central_differences_in_float64()
    {
        using var model = MgmFixture.Load(Fixture).Build();
        using var io = FixtureIo.Open(MgmFixture.Load(Fixture).Folder);
        model.Module.To(CPU, ScalarType.Float64);
        using var trainer = new MiniGeminiTrainer(model, new TrainingOptions { Stage = TrainingStage.Full });
        var row = FixtureRow(out _);
        var hr = io["pixel_values_hr"].to(ScalarType.Float64);
        trainer.SetTraining(true);
        double Loss()
        {
            using var _ = no_grad();
            using var l = MiniGeminiTrainer.Loss(model, [row], hr, Fixture);
            return l.item<double>();
        }

        using (var loss = MiniGeminiTrainer.Loss(model, [row], hr, Fixture)) loss.backward();
        var parameters = CheckpointLayoutOf(model);
        Assert.Equal(trainer.TrainableParameters.Count, parameters.Count);
        var failures = new List<string>();
        const double eps = 1e-6;
        foreach (var (key, p) in parameters)
        {
            var grad = p.grad is null ? zeros_like(p) : p.grad.detach().clone();
            var flat = grad.reshape(-1).abs();
            double scale = flat.max().item<double>();
            // The largest entry and one more: where the gradient is large, a relative error means something.
            var entries = new[] { flat.argmax().item<long>(), flat.numel() / 2 }.Distinct();
            foreach (var index in entries)
            {
                double analytic = grad.reshape(-1)[index].item<double>(), numeric;
                using (no_grad())
                {
                    var element = p.view(-1).narrow(0, index, 1);
                    element.add_(eps);
                    double plus = Loss();
                    element.sub_(2 * eps);
                    double minus = Loss();
                    element.add_(eps);
                    numeric = (plus - minus) / (2 * eps);
                }
                double error = Math.Abs(analytic - numeric) / Math.Max(scale, 1e-12);
                // A gradient that is zero by construction (layers after mm_vision_select_layer, key biases under softmax):
                // the central difference then only sees rounding noise.
                bool unused = scale < 1e-12 && Math.Abs(numeric) < 1e-8;
                if (!unused && error > 1e-6) failures.Add($"{key}[{index}]: autograd {analytic:E6}, central difference {numeric:E6} (relative {error:E2})");
            }
        }
        trainer.SetTraining(false);
        Assert.True(failures.Count == 0, string.Join("\n", failures));
    }

    [Fact]
    public void Frozen_parameters_get_no_gradient_and_do_not_change_while_the_stage_trains()
    {
        using var model = MgmFixture.Load(Fixture).Build();
        var before = CheckpointLayoutOf(model, all: true).ToDictionary(x => x.Key, x => x.Parameter.detach().clone());
        using var trainer = new MiniGeminiTrainer(model, new TrainingOptions { Stage = TrainingStage.Pretrain, Steps = 2, BatchSize = 1, WarmupSteps = 0, CheckpointEvery = 0 });
        Assert.All(trainer.TrainableParameters, k => Assert.True(k.StartsWith("model.vlm_uni_") || k.StartsWith("model.mm_projector."), k));
        var output = Path.Combine(Path.GetTempPath(), "mgm-train-frozen-" + Guid.NewGuid().ToString("N"));
        try
        {
            trainer.Train(_ => new TrainingSample(ImageInput.FromFile(TinyModelFixture.ImagePath), [new ChatExchange("Describe the picture.", "A test pattern.")]), output);
            foreach (var (key, p) in CheckpointLayoutOf(model, all: true))
            {
                bool trains = trainer.TrainableParameters.Contains(key);
                if (!trains) Assert.True(p.grad is null, $"{key} is frozen but has a gradient");
                // The key projector's biases shift every score of a query alike, which softmax ignores: their gradient is zero.
                if (KeyBiases.Contains(key)) continue;
                Assert.True(trains != p.detach().equal(before[key]).all().item<bool>(), trains ? $"{key} trains but did not change" : $"{key} is frozen but changed");
            }
        }
        finally
        {
            if (Directory.Exists(output)) Directory.Delete(output, recursive: true);
        }
    }

    [Fact]
    public void Towers_move_by_their_share_of_the_learning_rate()
    {
        using var model = MgmFixture.Load(Fixture).Build();
        var before = CheckpointLayoutOf(model, all: true).ToDictionary(x => x.Key, x => x.Parameter.detach().clone());
        const double lr = 1e-3, scale = 0.1;
        using var trainer = new MiniGeminiTrainer(model, new TrainingOptions
        {
            Stage = TrainingStage.Full, Steps = 1, BatchSize = 1, WarmupSteps = 0, CheckpointEvery = 0,
            LearningRate = lr, MinLearningRate = lr, WeightDecay = 0, TowerLearningRateScale = scale,
        });
        var output = Path.Combine(Path.GetTempPath(), "mgm-train-tower-lr-" + Guid.NewGuid().ToString("N"));
        try
        {
            trainer.Train(_ => new TrainingSample(ImageInput.FromFile(TinyModelFixture.ImagePath), [new ChatExchange("Describe the picture.", "A test pattern.")]), output);
            // AdamW's first step moves every entry with a gradient by about the learning rate (m̂/√v̂ = ±1).
            double Moved(Func<string, bool> which) => CheckpointLayoutOf(model)
                .Where(x => which(x.Key)).Max(x => (x.Parameter.detach() - before[x.Key]).abs().max().item<float>());
            double tower = Moved(TrainingStage.IsTower), rest = Moved(k => !TrainingStage.IsTower(k));
            Assert.InRange(tower, 0.5 * scale * lr, 1.01 * scale * lr);
            Assert.InRange(rest, 0.5 * lr, 1.01 * lr);
        }
        finally
        {
            if (Directory.Exists(output)) Directory.Delete(output, recursive: true);
        }
    }

    [Fact]
    public void A_stage_that_trains_nothing_is_refused_naming_its_prefixes()
    {
        using var model = MgmFixture.Load(Fixture).Build();
        var stage = new TrainingStage { Name = "nothing", TrainablePrefixes = ["model.no_such_module."] };
        var e = Assert.Throws<MiniGeminiTrainingException>(() => new MiniGeminiTrainer(model, new TrainingOptions { Stage = stage }));
        Assert.Contains("model.no_such_module.", e.Message);
    }

    static readonly string[] KeyBiases = ["model.vlm_uni_aux_projector.0.bias", "model.vlm_uni_aux_projector.1.bias"];

    static List<(string Key, TorchSharp.Modules.Parameter Parameter)> CheckpointLayoutOf(MiniGeminiModel model, bool all = false) =>
        model.Module.CheckpointParameters().Where(x => all || x.Parameter.requires_grad).ToList();
}
