using MiniGemini.Modeling;
using MiniGemini.Text;
using MiniGemini.Training;
using MiniGemini.Training.DetailShapes;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace MiniGemini.Tests.Training;

/// <summary>
/// The answer focus term: the attention probe it reads, the focus the Detail Shapes stream gives, what training with
/// it does to the focused head, and refused focus.
/// </summary>
public sealed class AnswerFocusTests : IDisposable
{
    readonly string _root = Path.Combine(Path.GetTempPath(), "mgm-answer-focus-" + Guid.NewGuid().ToString("N"));

    static TrainingOptions Options(int steps, double weight) => new()
    {
        Stage = TrainingStage.LanguageModel, Steps = steps, BatchSize = 4, LearningRate = 3e-3, WarmupSteps = 2, CheckpointEvery = 0,
        AnswerFocusWeight = weight,
    };

    [Fact]
    public void The_stream_focuses_each_question_about_one_object_on_the_token_of_its_cell()
    {
        var data = new DetailShapesTraining(seed: 4);
        int focused = 0;
        for (int i = 0; i < 40; i++)
        {
            var sample = data.Sample(i);
            if (sample.Image is null) continue;
            Assert.NotNull(sample.AnswerFocus);
            Assert.Equal(sample.Exchanges.Count, sample.AnswerFocus!.Count);
            for (int e = 0; e < sample.Exchanges.Count; e++)
            {
                var question = sample.Exchanges[e].User;
                var named = Cell.All.Where(c => question.EndsWith($"at the {c.Name}?", StringComparison.Ordinal)).Select(c => (int?)c.Index).FirstOrDefault();
                if (question is QuestionWriter.CountQuestion or QuestionWriter.DescribeQuestion) Assert.Null(sample.AnswerFocus[e]);
                else Assert.NotNull(sample.AnswerFocus[e]);
                if (named is not null) Assert.Equal(named, sample.AnswerFocus[e]);
                if (sample.AnswerFocus[e] is not null) focused++;
            }
        }
        Assert.True(focused > 100, $"{focused} focused answers in 40 samples");
    }

    [Fact]
    public void The_probe_reads_a_distribution_over_the_keys_up_to_the_query_and_refuses_later_keys()
    {
        using var model = TinyTraining.Load(TinyTraining.NewModel(_root));
        const int length = 9, query = 6;
        using var scope = NewDisposeScope();
        using var mode = inference_mode();
        var ids = tensor(Enumerable.Range(3, length).Select(i => (long)i).ToArray()).unsqueeze(0); // [1, T]
        var embeds = model.Module.Embed(ids);                                                      // [1, T, H]
        var positions = arange(length, dtype: ScalarType.Int64).unsqueeze(0);                  // [1, T]
        var keys = Enumerable.Range(0, query + 1).Select(k => (long)k).ToArray();
        foreach (var (layer, head) in new[] { (0, 0), (1, 1) })
        {
            using var probe = new AttentionProbe(layer, head, new long[keys.Length], Enumerable.Repeat((long)query, keys.Length).ToArray(), keys);
            using (AttentionProbe.Record(probe)) model.Module.Forward(embeds, positions, allLogits: true);
            var shares = probe.LogShares.exp();
            Assert.Equal(1.0, shares.sum().item<float>(), 5);
            Assert.True(shares.min().item<float>() > 0, "every earlier key gets some attention");
        }
        Assert.Throws<ArgumentException>(() => new AttentionProbe(0, 0, [0], [3], [4]));
        // Outside Record, forwards leave a probe alone.
        using var unused = new AttentionProbe(0, 0, [0], [3], [1]);
        model.Module.Forward(embeds, positions, allLogits: true);
        Assert.Throws<InvalidOperationException>(() => unused.LogShares);
    }

    [Fact]
    public void The_answer_focus_term_moves_the_head_onto_the_asked_about_token_and_without_it_the_head_does_not_move_there()
    {
        var initial = TinyTraining.NewModel(_root);
        var heldOut = Enumerable.Range(0, 24).Select(i => new DetailShapesTraining(seed: 9).Sample(i)).ToList();
        double Share(double weight, out double before)
        {
            using var model = TinyTraining.Load(initial);
            using var trainer = new MiniGeminiTrainer(model, Options(15, weight));
            before = trainer.AnswerFocusShare(heldOut);
            trainer.Train(new DetailShapesTraining(seed: 8).Sample, Path.Combine(_root, $"focus-{weight}"));
            return trainer.AnswerFocusShare(heldOut);
        }
        double focused = Share(1.0, out double initialShare), unfocused = Share(0.0, out _);
        // A conversation of the tiny model is about a hundred positions, four of them image tokens.
        Assert.InRange(initialShare, 0.001, 0.1);
        Assert.True(focused > 4 * initialShare && focused > 2 * unfocused,
            $"head 0 of layer 1 on the asked-about token: {initialShare:P2} at initialisation, {focused:P2} after 15 steps with the focus term, {unfocused:P2} without");
    }

    [Fact]
    public void Answer_focus_that_does_not_fit_is_refused_naming_the_sample()
    {
        using var model = TinyTraining.Load(TinyTraining.NewModel(_root));
        using var trainer = new MiniGeminiTrainer(model, Options(1, 1.0) with { BatchSize = 1 });
        var sample = new TrainingSample(new DetailShapesTraining(seed: 3).VisionSample(0).Image,
            [new ChatExchange("What shape is at the top left?", "circle"), new ChatExchange("How many shapes are there?", "2")], Name: "base");
        void Refused(TrainingSample bad, string words)
        {
            var e = Assert.Throws<TrainingDataException>(() => trainer.Train(_ => bad, Path.Combine(_root, bad.Name)));
            Assert.Equal(bad.Name, e.Sample);
            Assert.Contains(words, e.Message);
        }
        Refused(sample with { AnswerFocus = [0], Name = "one-for-two" }, "AnswerFocus has 1 entries for 2 exchanges");
        Refused(sample with { AnswerFocus = [4, null], Name = "token-4" }, "image token 4, but an image has 4 tokens");
        Refused(sample with { Image = null, AnswerFocus = [0, null], Name = "no-image" }, "the sample has no image");
        var layer = Assert.Throws<MiniGeminiTrainingException>(() => new MiniGeminiTrainer(model, Options(1, 1.0) with { AnswerFocusLayer = 2 }));
        Assert.Contains("AnswerFocusLayer is 2, but the LLM has 2 layers", layer.Message);
    }

    public void Dispose()
    {
        if (Directory.Exists(_root)) Directory.Delete(_root, recursive: true);
    }
}
