using System.CommandLine;
using System.Text;
using MiniGemini.Cli;

Console.OutputEncoding = new UTF8Encoding(encoderShouldEmitUTF8Identifier: false);

var cli = new CliDefinition();
var parse = cli.Root.Parse(args);
if (parse.Errors.Count > 0)
{
    foreach (var error in parse.Errors) Console.Error.WriteLine($"error: {error.Message}");
    Console.Error.WriteLine("Run with --help for the commands and options.");
    return ErrorReport.Usage;
}

using var interrupt = new Interrupt();
try
{
    return await parse.InvokeAsync(new InvocationConfiguration
    {
        // Ctrl+C is ours (Interrupt): it cancels the token, and the command decides how to stop.
        ProcessTerminationTimeout = null,
        EnableDefaultExceptionHandler = false,
    }, interrupt.Token);
}
catch (OperationCanceledException) when (interrupt.Token.IsCancellationRequested)
{
    // Leave the streamed answer's line, or the chat prompt's on a terminal.
    if (!Answerer.EndLine() && !Console.IsErrorRedirected) Console.Error.WriteLine();
    Console.Error.WriteLine("Cancelled.");
    return Interrupt.ExitCode;
}
catch (Exception e)
{
    return ErrorReport.Handle(e, parse.GetValue(cli.Verbose));
}
