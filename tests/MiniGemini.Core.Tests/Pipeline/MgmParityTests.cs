using MiniGemini.Generation;
using MiniGemini.Tests.Parity;
using MiniGemini.Text;
using MiniGemini.Vision;
using MiniGemini.Modeling;
using Xunit;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace MiniGemini.Tests.Pipeline;

/// <summary>
/// End-to-end parity on whole MGM fixtures (bundled and MINIGEMINI_EXTRA_FIXTURES): from <c>pixel_values_hr</c> through
/// LR derivation, both towers, mining, projector, splice, LLM logits and 16 greedy tokens.
/// </summary>
public sealed class MgmParityTests(ITestOutputHelper output)
{
    public static TheoryData<string> Cases => FixtureCatalog.Cases(FixtureKind.Mgm);

    [Theory]
    [MemberData(nameof(Cases))]
    public void Image_side_matches_the_reference(string id)
    {
        var fixture = MgmFixture.Load(id);
        using var model = fixture.Build();
        using var io = FixtureIo.Open(fixture.Folder);
        using var scope = NewDisposeScope();

        var hr = io["pixel_values_hr"];
        var options = model.ImageOptions;
        Report(TensorAssert.Close(io["pixel_values_lr"], ImageProcessor.LowResolutionViews(hr, options.LrSize, options.Grid, options.Global), "pixel_values_lr"), "pixel_values_lr");
        using var features = model.Module.Encode(hr, keepIntermediates: true);
        Report(TensorAssert.Close(io["lr_features"], features.LrFeatures!, "lr_features"), "lr_features");
        Report(TensorAssert.Close(io["hr_fused"], features.HrFused!, "hr_fused"), "hr_fused");
        Report(TensorAssert.Close(io["mined"], features.Mined!, "mined"), "mined");
        Report(TensorAssert.Close(io["image_tokens"], features.Tokens, "image_tokens"), "image_tokens");
        if (fixture.ImageTokenCount is { } count) Assert.Equal(count, model.ImageTokensPerImage);
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void Prompt_splice_logits_and_greedy_tokens_match_the_reference(string id)
    {
        var fixture = MgmFixture.Load(id);
        using var model = fixture.Build();
        using var io = FixtureIo.Open(fixture.Folder);
        using var scope = NewDisposeScope();

        // The case's prompt is used as given (it names the template it was rendered with).
        var ids = ImageSlotTokenizer.Tokenize(model.Tokenizer, fixture.Prompt);
        Assert.Equal(fixture.InputIds, ids);

        using var features = model.Module.Encode(io["pixel_values_hr"]);
        var embeds = model.Module.Splice(ids, features.Tokens).unsqueeze(0); // [1, L, H]
        Report(TensorAssert.Close(io["input_embeds"], embeds, "input_embeds"), "input_embeds");

        var length = embeds.shape[1];
        var logits = model.Module.Forward(embeds, arange(length).unsqueeze(0), allLogits: true);
        Report(TensorAssert.Close(io["logits"], logits, "logits"), "logits");

        var expected = io["greedy_tokens"];
        var options = new GenerationOptions { MaxNewTokens = (int)expected.shape[1], EosTokenIds = [] };
        var tokens = TokenGenerator.Generate(model.Module, embeds, null, options).Select(step => (long)step.TokenIds[0]).ToArray();
        TensorAssert.Equal(expected, tensor(tokens).unsqueeze(0), "greedy_tokens");
        if (fixture.GreedyText is { } text)
            Assert.Equal(text, model.Tokenizer.Decode(tokens.Select(t => (int)t)));
    }

    void Report(double error, string name) => output.WriteLine($"{name}: max |Δ| = {error:E3}");
}
