using MiniGemini.Generation;
using MiniGemini.Modeling;
using Xunit;

namespace MiniGemini.Tests.Pipeline;

/// <summary>The default token budget is what the context has left; only an explicit budget beyond it is an error.</summary>
[Collection(TinyModelCollection.Name)]
public sealed class DefaultBudgetTests(TinyModelFixture fixture)
{
    [Fact]
    public void A_default_request_runs_to_the_end_of_the_context_and_finishes_with_length()
    {
        var model = fixture.Model;
        var prompt = MiniGeminiPrompt.Ask("Describe the picture.", ImageInput.FromFile(TinyModelFixture.ImagePath));
        int room = model.ContextLength - model.CountPromptTokens(prompt);
        // Random weights rarely say </s>: stop only at the end of the context.
        var response = model.Generate(prompt, new GenerationOptions { EosTokenIds = [] });
        Assert.Equal(room, response.CompletionTokens);
        Assert.Equal(FinishReason.Length, response.FinishReason);
    }

    [Fact]
    public void An_explicit_budget_beyond_the_context_is_refused_naming_both_numbers()
    {
        var model = fixture.Model;
        var prompt = MiniGeminiPrompt.Ask("Describe the picture.", ImageInput.FromFile(TinyModelFixture.ImagePath));
        int positions = model.CountPromptTokens(prompt), asked = model.ContextLength - positions + 1;
        var e = Assert.Throws<ContextLengthExceededException>(() => model.Generate(prompt, new GenerationOptions { MaxNewTokens = asked }));
        Assert.Contains($"{positions} positions", e.Message);
        Assert.Contains($"{asked} new tokens", e.Message);
    }
}
