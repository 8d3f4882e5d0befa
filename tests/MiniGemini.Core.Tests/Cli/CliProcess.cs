using System.Diagnostics;
using System.Reflection;
using System.Runtime.InteropServices;
using System.Text;

namespace MiniGemini.Tests.Cli;

/// <summary>What one run of a process (the CLI, a build, a documentation program) printed and returned.</summary>
public sealed record ProcessResult(int ExitCode, string Stdout, string Stderr)
{
    public override string ToString() => $"exit {ExitCode}\n--- stdout ---\n{Stdout}\n--- stderr ---\n{Stderr}";
}

/// <summary>
/// Runs the built MiniGemini.Cli as a real process (<c>dotnet MiniGemini.Cli.dll …</c>), the build of the same
/// configuration as these tests (the test project references the CLI project so it is built first).
/// </summary>
public sealed class CliProcess : IDisposable
{
    static readonly TimeSpan Limit = TimeSpan.FromMinutes(2);

    readonly Process _process;
    readonly StringBuilder _stdout = new(), _stderr = new();

    CliProcess(IEnumerable<string> args, string workingDirectory)
    {
        var start = new ProcessStartInfo(DotnetHost)
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            StandardOutputEncoding = Encoding.UTF8,
            StandardErrorEncoding = Encoding.UTF8,
            UseShellExecute = false,
            WorkingDirectory = workingDirectory,
        };
        start.ArgumentList.Add(CliPath);
        foreach (var arg in args) start.ArgumentList.Add(arg);
        _process = new Process { StartInfo = start };
        _process.OutputDataReceived += (_, e) => Append(_stdout, e.Data);
        _process.ErrorDataReceived += (_, e) => Append(_stderr, e.Data);
        _process.Start();
        _process.BeginOutputReadLine();
        _process.BeginErrorReadLine();
    }

    /// <summary>The CLI's dll, as the build recorded it in this assembly.</summary>
    public static string CliPath { get; } = FindCli();

    public string Stderr { get { lock (_stderr) return _stderr.ToString(); } }

    /// <summary>Starts the CLI; stdin stays open until <see cref="WaitAsync"/> closes it.</summary>
    public static CliProcess Start(IEnumerable<string> args, string? workingDirectory = null) =>
        new(args, workingDirectory ?? Path.GetTempPath());

    /// <summary>Runs the CLI to the end with <paramref name="stdin"/> as its whole input.</summary>
    public static async Task<ProcessResult> RunAsync(IEnumerable<string> args, string stdin = "", string? workingDirectory = null)
    {
        using var process = Start(args, workingDirectory);
        await process.WriteInputAsync(stdin);
        return await process.WaitAsync();
    }

    public async Task WriteInputAsync(string text)
    {
        await _process.StandardInput.WriteAsync(text);
        await _process.StandardInput.FlushAsync();
    }

    /// <summary>Waits until stderr contains <paramref name="marker"/>; fails if the process ends or the limit passes first.</summary>
    public async Task WaitForStderrAsync(string marker)
    {
        var clock = Stopwatch.StartNew();
        while (!Stderr.Contains(marker, StringComparison.Ordinal))
        {
            if (_process.HasExited || clock.Elapsed > Limit)
                throw new TimeoutException($"The CLI never printed '{marker}' on stderr.\n{Stderr}");
            await Task.Delay(50);
        }
    }

    /// <summary>Sends SIGINT, as Ctrl+C in a terminal does.</summary>
    public void Interrupt()
    {
        if (kill(_process.Id, SigInt) != 0) throw new InvalidOperationException($"kill({_process.Id}, SIGINT) failed: errno {Marshal.GetLastPInvokeError()}.");
    }

    /// <summary>Closes stdin (unless told not to) and waits for the exit; kills the process and fails when it runs past the limit.</summary>
    public async Task<ProcessResult> WaitAsync(bool closeInput = true)
    {
        if (closeInput) _process.StandardInput.Close();
        using var timeout = new CancellationTokenSource(Limit);
        try
        {
            await _process.WaitForExitAsync(timeout.Token);
        }
        catch (OperationCanceledException)
        {
            _process.Kill(entireProcessTree: true);
            throw new TimeoutException($"The CLI ran longer than {Limit}.\n{Stderr}");
        }
        _process.WaitForExit(); // drains the redirected streams
        lock (_stdout) lock (_stderr) return new ProcessResult(_process.ExitCode, _stdout.ToString(), _stderr.ToString());
    }

    public void Dispose()
    {
        if (!_process.HasExited) _process.Kill(entireProcessTree: true);
        _process.Dispose();
    }

    static void Append(StringBuilder buffer, string? line)
    {
        if (line is null) return;
        lock (buffer) buffer.Append(line).Append('\n');
    }

    /// <summary>The dotnet host running these tests (the SDK sets DOTNET_HOST_PATH), else the one on PATH.</summary>
    internal static string DotnetHost =>
        Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") is { Length: > 0 } host && File.Exists(host) ? host : "dotnet";

    static string FindCli()
    {
        var path = typeof(CliProcess).Assembly.GetCustomAttributes<AssemblyMetadataAttribute>()
            .FirstOrDefault(a => a.Key == "MiniGemini.Cli.Path")?.Value;
        if (string.IsNullOrEmpty(path) || !File.Exists(path))
            throw new FileNotFoundException($"MiniGemini.Cli.dll was not built where the test build expected it ('{path}'). Build the solution first.");
        return path;
    }

    const int SigInt = 2;

    [DllImport("libc", SetLastError = true)]
    static extern int kill(int pid, int sig);
}
