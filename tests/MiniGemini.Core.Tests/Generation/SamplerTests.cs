using MiniGemini.Generation;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace MiniGemini.Tests.Generation;

public sealed class SamplerTests
{
    static float[] Values(Tensor t) => t.to(ScalarType.Float32).data<float>().ToArray();

    [Fact]
    public void Repetition_penalty_divides_positive_and_multiplies_negative_logits_of_seen_tokens()
    {
        using var scope = NewDisposeScope();
        var scores = tensor(new float[] { 2f, -1f, 0.5f, -3f, 4f }).unsqueeze(0);
        var seen = tensor(new[] { true, true, false, false, true }).unsqueeze(0);
        var result = Sampler.ApplyRepetitionPenalty(scores, seen, 2.0);
        Assert.Equal(new[] { 1f, -2f, 0.5f, -3f, 2f }, Values(result));
    }

    [Fact]
    public void Top_k_keeps_the_k_largest_and_their_ties()
    {
        using var scope = NewDisposeScope();
        var scores = tensor(new float[] { 1f, 3f, 2f, 3f, 0f }).unsqueeze(0);
        float inf = float.NegativeInfinity;
        Assert.Equal(new[] { inf, 3f, inf, 3f, inf }, Values(Sampler.ApplyTopK(scores, 2)));
        Assert.Equal(new[] { inf, 3f, 2f, 3f, inf }, Values(Sampler.ApplyTopK(scores, 3)));
        Assert.Equal(Values(scores), Values(Sampler.ApplyTopK(scores, 10)));
    }

    [Theory]
    [InlineData(0.6, new[] { true, true, false, false })]   // 0.5 + 0.3 reaches 0.6
    [InlineData(0.45, new[] { true, false, false, false })] // the top token alone has 0.5
    [InlineData(0.9, new[] { true, true, true, false })]
    [InlineData(1e-6, new[] { true, false, false, false })] // the most likely token always survives
    public void Top_p_keeps_the_smallest_nucleus_reaching_p(double p, bool[] kept)
    {
        using var scope = NewDisposeScope();
        // Deliberately not in probability order, to exercise the sort and scatter back.
        var probs = new[] { 0.5, 0.3, 0.15, 0.05 };
        var order = new[] { 2, 0, 3, 1 };
        var scores = tensor(order.Select(i => (float)Math.Log(probs[i])).ToArray()).unsqueeze(0);
        var result = Values(Sampler.ApplyTopP(scores, p));
        Assert.Equal(order.Select(i => kept[i]).ToArray(), result.Select(v => !float.IsNegativeInfinity(v)).ToArray());
    }

    [Fact]
    public void Greedy_choice_applies_the_penalty_first()
    {
        using var scope = NewDisposeScope();
        var options = new GenerationOptions { RepetitionPenalty = 4.0 };
        using var sampler = new Sampler(options, batch: 1, vocab: 3, CPU);
        var logits = tensor(new float[] { 1f, 3f, 2f }).unsqueeze(0);
        Assert.Equal(1, sampler.Choose(logits).item<long>());
        sampler.Observe(tensor(new long[] { 1 }));
        Assert.Equal(2, sampler.Choose(logits).item<long>()); // 3/4 < 2
    }

    [Fact]
    public void Options_out_of_range_are_named()
    {
        Assert.Equal("MaxNewTokens", Assert.Throws<ArgumentOutOfRangeException>(() => new GenerationOptions { MaxNewTokens = 0 }.Validate()).ParamName);
        Assert.Equal("Temperature", Assert.Throws<ArgumentOutOfRangeException>(() => new GenerationOptions { Temperature = -1 }.Validate()).ParamName);
        var tiny = Assert.Throws<ArgumentOutOfRangeException>(() => new GenerationOptions { Temperature = 1e-320 }.Validate());
        Assert.Equal("Temperature", tiny.ParamName);
        Assert.Contains("at least 0.001", tiny.Message);
        new GenerationOptions { Temperature = GenerationOptions.MinTemperature }.Validate();
        Assert.Equal("TopP", Assert.Throws<ArgumentOutOfRangeException>(() => new GenerationOptions { TopP = 0 }.Validate()).ParamName);
        Assert.Equal("TopK", Assert.Throws<ArgumentOutOfRangeException>(() => new GenerationOptions { TopK = -1 }.Validate()).ParamName);
        Assert.Equal("RepetitionPenalty", Assert.Throws<ArgumentOutOfRangeException>(() => new GenerationOptions { RepetitionPenalty = 0 }.Validate()).ParamName);
    }

    [Theory]
    [InlineData("MaxNewTokens", "negative")]
    [InlineData("Temperature", "NaN")]
    [InlineData("Temperature", "infinity")]
    [InlineData("TopP", "above 1")]
    [InlineData("TopP", "NaN")]
    public void Negative_nan_and_out_of_range_settings_are_named(string setting, string value)
    {
        var options = (setting, value) switch
        {
            ("MaxNewTokens", _) => new GenerationOptions { MaxNewTokens = -5 },
            ("Temperature", "NaN") => new GenerationOptions { Temperature = double.NaN },
            ("Temperature", _) => new GenerationOptions { Temperature = double.PositiveInfinity },
            ("TopP", "NaN") => new GenerationOptions { TopP = double.NaN },
            _ => new GenerationOptions { TopP = 1.5 },
        };
        var e = Assert.Throws<ArgumentOutOfRangeException>(options.Validate);
        Assert.Equal(setting, e.ParamName);
        Assert.Contains(setting, e.Message);
    }

    [Fact]
    public void Generation_config_defaults_apply_sampling_only_when_it_samples()
    {
        var llama3 = new MiniGemini.Checkpoints.GenerationConfig { EosTokenIds = [128001, 128009], Temperature = 0.6, TopP = 0.9, DoSample = true };
        var options = GenerationOptions.FromGenerationConfig(llama3);
        Assert.Equal([128001, 128009], options.EosTokenIds);
        Assert.Equal(0.6, options.Temperature);
        Assert.Equal(0.9, options.TopP);
        Assert.True(options.IsSampling);

        var greedy = GenerationOptions.FromGenerationConfig(llama3 with { DoSample = null });
        Assert.False(greedy.IsSampling);
        Assert.Equal(1.0, greedy.TopP);
    }

    [Fact]
    public void Draws_follow_the_distribution_and_never_pick_excluded_tokens()
    {
        using var scope = NewDisposeScope();
        const int rows = 8000;
        var probabilities = new[] { 0.1, 0.2, 0.3, 0.4, 0.0 };
        var logits = tensor(probabilities.Select(p => p == 0 ? float.NegativeInfinity : (float)Math.Log(p)).ToArray()).expand(rows, -1).contiguous();
        using var sampler = new Sampler(new GenerationOptions { Temperature = 1.0, TopK = 0, Seed = 11 }, rows, 5, CPU);
        var counts = sampler.Choose(logits).bincount(null, 5).to(ScalarType.Float64) / rows;
        var frequencies = counts.data<double>().ToArray();
        for (int i = 0; i < 5; i++) Assert.InRange(frequencies[i], probabilities[i] - 0.025, probabilities[i] + 0.025);
        Assert.Equal(0.0, frequencies[4]);

        using var topTwo = new Sampler(new GenerationOptions { Temperature = 1.0, TopK = 2, Seed = 11 }, rows, 5, CPU);
        var kept = topTwo.Choose(logits).bincount(null, 5).data<long>().ToArray();
        Assert.Equal(0, kept[0] + kept[1] + kept[4]);
        Assert.InRange(kept[3] / (double)rows, 4.0 / 7 - 0.03, 4.0 / 7 + 0.03);
    }
}
