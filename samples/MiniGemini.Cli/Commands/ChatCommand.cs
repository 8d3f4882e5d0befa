namespace MiniGemini.Cli.Commands;

/// <summary>
/// <c>chat</c>: a conversation read line by line from stdin; each answer sees the whole conversation so far. Ends at end
/// of input, an empty line, or <c>exit</c>/<c>quit</c>. The image (--image; on the bundled model by default its example
/// picture) goes with the first message.
/// </summary>
static class ChatCommand
{
    public static async Task<int> RunAsync(CommonSettings settings, string? imagePath, CancellationToken cancellationToken)
    {
        // The bundled model knows only its task's pictures: without --image it talks about the bundled example picture.
        var images = Images.Given(imagePath ?? (settings.IsBundledModel ? BundledModel.ExampleImage : null));
        using var session = await ModelSession.LoadAsync(settings, imageGenerator: null, cancellationToken);
        var answerer = new Answerer(session, settings);
        bool typing = !Console.IsInputRedirected;
        settings.Note($"Chat with {session.Model.Name}{(images.Length > 0 ? $" about {images[0].Name}" : "")}: " +
                      "one message per line; an empty line, 'exit' or end of input (Ctrl+D) ends the chat.");

        var turns = new List<ChatTurn>();
        while (true)
        {
            if (typing && !settings.Quiet) Console.Error.Write("> ");
            var line = await ReadLineAsync(cancellationToken);
            if (line is null) break;
            line = line.Trim();
            if (line.Length == 0 || line is "exit" or "quit") break;

            turns.Add(ChatTurn.User(line, turns.Count == 0 ? images : []));
            var answer = await answerer.AnswerAsync(new MiniGeminiPrompt { Turns = [.. turns] }, cancellationToken);
            turns.Add(ChatTurn.Assistant(answer.Response.Text));
            if (settings.Json) AnswerReport.From(session, answer).Print();
            else settings.Note(answer.Summary());
        }
        return 0;
    }

    /// <summary>Console reads cannot be cancelled; waiting on one from another thread lets Ctrl+C end the chat at the prompt.</summary>
    static Task<string?> ReadLineAsync(CancellationToken cancellationToken) =>
        Task.Run(Console.In.ReadLine, CancellationToken.None).WaitAsync(cancellationToken);
}
