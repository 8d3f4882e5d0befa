using System.Diagnostics;
using MiniGemini.Modeling;

namespace MiniGemini.Cli;

/// <summary>One answer and how long it took.</summary>
sealed record Answer(MiniGeminiResponse Response, TimeSpan Elapsed)
{
    public double TokensPerSecond => Elapsed.TotalSeconds > 0 ? Response.CompletionTokens / Elapsed.TotalSeconds : 0;

    /// <summary>A line for people: tokens, time and why it stopped.</summary>
    public string Summary() =>
        $"[{Response.PromptTokens} prompt tokens, {Response.CompletionTokens} new in {Elapsed.TotalSeconds:0.00} s " +
        $"({TokensPerSecond:0.0} tokens/s), finished by {(Response.FinishReason == FinishReason.Stop ? "a stop token" : "the token limit")}]";
}

/// <summary>Runs prompts on a model, streaming the answer to stdout as it comes (not in JSON mode).</summary>
sealed class Answerer(ModelSession session, CommonSettings settings)
{
    readonly bool _toTerminal = !Console.IsOutputRedirected;

    /// <summary>Whether stdout is in the middle of a streamed answer (an error or Ctrl+C then ends the line first).</summary>
    public static bool MidLine { get; private set; }

    /// <summary>Ends a partly streamed answer's line; false when there was none.</summary>
    public static bool EndLine()
    {
        if (!MidLine) return false;
        Console.Out.WriteLine();
        MidLine = false;
        return true;
    }

    public async Task<Answer> AnswerAsync(MiniGeminiPrompt prompt, CancellationToken cancellationToken)
    {
        var options = settings.Generation;
        if (!settings.MaxNewTokensGiven)
        {
            // The default budget may not fit this model's context: use what the prompt leaves (at least one token;
            // a prompt that fills the context is then refused by the model with a clear message).
            int room = session.Model.ContextLength - session.Model.CountPromptTokens(prompt);
            if (room < options.MaxNewTokens) options = options with { MaxNewTokens = Math.Max(1, room) };
        }
        var clock = Stopwatch.StartNew();
        bool printed = false;
        MiniGeminiResponse? response = null;
        await foreach (var update in session.Model.GenerateStreamingAsync(prompt, options, cancellationToken).ConfigureAwait(false))
        {
            // The final text is trimmed; trim the start of the stream the same way.
            var text = printed ? update.Text : update.Text.TrimStart();
            if (text.Length > 0 && !settings.Json)
            {
                Console.Out.Write(_toTerminal ? Printable(text) : text);
                printed = MidLine = true;
            }
            response = update.Completed ?? response;
        }
        EndLine();
        return new Answer(response ?? throw new InvalidOperationException("The answer stream ended without a response."), clock.Elapsed);
    }

    /// <summary>
    /// Control characters a model may emit (byte-fallback tokens can spell ESC sequences) shown as U+FFFD on a terminal,
    /// so they cannot move the cursor or change its settings; redirected output keeps the exact text.
    /// </summary>
    static string Printable(string text) =>
        text.Any(IsUnsafe) ? string.Concat(text.Select(c => IsUnsafe(c) ? '\uFFFD' : c)) : text;

    static bool IsUnsafe(char c) => char.IsControl(c) && c is not '\n' and not '\t';
}
