using System.Diagnostics;
using System.Text;
using System.Xml.Linq;
using MiniGemini.Tests.Cli;
using MiniGemini.Tests.Parity;
using SixLabors.ImageSharp;
using Xunit;

namespace MiniGemini.Tests.Docs;

/// <summary>
/// Every C# block of README.md and docs/*.md, built into one fresh console project (net8.0 and net10.0) that references
/// the library as an application does, built once for the tests of this class.
/// </summary>
public sealed class DocProject : IDisposable
{
    const string Configuration =
#if DEBUG
        "Debug";
#else
        "Release";
#endif

    public DocProject()
    {
        Snippets = DocSnippets.Read(RepositoryRoot);
        Folder = Directory.CreateTempSubdirectory("minigemini-docs-").FullName;
        File.WriteAllText(Path.Combine(Folder, "Docs.csproj"), ProjectFile());
        File.Copy(Path.Combine(RepositoryRoot, "nuget.config"), Path.Combine(Folder, "nuget.config"));
        foreach (var snippet in Snippets) File.WriteAllText(Path.Combine(Folder, snippet.ClassName + ".cs"), DocSnippets.ToSource(snippet));
        File.WriteAllText(Path.Combine(Folder, "Program.cs"), DocSnippets.Runner(Snippets.Where(s => s.Runs)));
        Build = Run(Folder, ["build", "-c", Configuration, "--nologo", "--disable-build-servers", "-v", "quiet"], rollForward: false);
    }

    public static string RepositoryRoot { get; } = Path.GetFullPath(Path.Combine(FixtureCatalog.ReferenceRoot, "..", "..", ".."));

    public IReadOnlyList<DocSnippet> Snippets { get; }

    public string Folder { get; }

    public ProcessResult Build { get; }

    public string ProgramPath(string targetFramework) => Path.Combine(Folder, "bin", Configuration, targetFramework, "Docs.dll");

    /// <summary>
    /// Runs the blocks that run, built for <paramref name="targetFramework"/>, in a folder of their own that holds the
    /// paths the documentation names, with the CLI's bundled model and picture behind them.
    /// </summary>
    public ProcessResult RunSnippets(string targetFramework) =>
        Run(MakeWorkspace(Path.Combine(Folder, "workspace-" + targetFramework)), [ProgramPath(targetFramework)], rollForward: true);

    string ProjectFile()
    {
        var versions = XDocument.Load(Path.Combine(RepositoryRoot, "Directory.Packages.props")).Descendants("PackageVersion")
            .ToDictionary(e => (string)e.Attribute("Include")!, e => (string)e.Attribute("Version")!);
        string Package(string name) => $"""    <PackageReference Include="{name}" Version="{versions[name]}" />""";
        return $"""
            <Project Sdk="Microsoft.NET.Sdk">
              <PropertyGroup>
                <OutputType>Exe</OutputType>
                <TargetFrameworks>net8.0;net10.0</TargetFrameworks>
                <Nullable>enable</Nullable>
                <ImplicitUsings>enable</ImplicitUsings>
                <!-- a block need not use every variable it declares -->
                <NoWarn>$(NoWarn);CS0168;CS0219;CS8321</NoWarn>
              </PropertyGroup>
              <ItemGroup>
                <ProjectReference Include="{Path.Combine(RepositoryRoot, "src", "MiniGemini.Core", "MiniGemini.Core.csproj")}" />
                <ProjectReference Include="{Path.Combine(RepositoryRoot, "src", "MiniGemini.Hosting", "MiniGemini.Hosting.csproj")}" />
            {Package("libtorch-cpu-linux-x64")}
            {Package("Microsoft.Extensions.AI")}
            {Package("Microsoft.Extensions.DependencyInjection")}
            {Package("Microsoft.Extensions.Logging")}
              </ItemGroup>
            </Project>
            """;
    }

    internal static string MakeWorkspace(string workspace)
    {
        var bundled = Path.Combine(Path.GetDirectoryName(CliProcess.CliPath)!, "default-model");
        var model = Directory.GetDirectories(bundled).Single(d => File.Exists(Path.Combine(d, "tokenizer.model")));
        var checkpoint = Directory.CreateDirectory(Path.Combine(workspace, "path", "to", "MGM-7B")).FullName;
        foreach (var file in Directory.GetFiles(model)) File.Copy(file, Path.Combine(checkpoint, Path.GetFileName(file)));
        // The towers the model's config names are found by their folder names under the search root, as for a release.
        Directory.CreateDirectory(Path.Combine(workspace, "path", "to", "model_zoo"));
        Directory.CreateSymbolicLink(Path.Combine(workspace, "path", "to", "model_zoo", "OpenAI"), model);
        using var picture = Image.Load(Path.Combine(bundled, "example.png"));
        picture.SaveAsJpeg(Path.Combine(workspace, "photo.jpg"));
        return workspace;
    }

    internal static ProcessResult Run(string workingDirectory, IEnumerable<string> args, bool rollForward)
    {
        var start = new ProcessStartInfo(CliProcess.DotnetHost)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            StandardOutputEncoding = Encoding.UTF8,
            UseShellExecute = false,
            WorkingDirectory = workingDirectory,
        };
        foreach (var arg in args) start.ArgumentList.Add(arg);
        // A build started from inside `dotnet test` must not inherit the test host's MSBuild settings.
        foreach (var name in start.Environment.Keys.Where(k => k.StartsWith("MSBUILD", StringComparison.OrdinalIgnoreCase)).ToList())
            start.Environment.Remove(name);
        // The net8.0 build runs on the newest runtime installed when there is no .NET 8 runtime, as an application may.
        if (rollForward) start.Environment["DOTNET_ROLL_FORWARD"] = "Major";
        using var process = Process.Start(start)!;
        var stderr = process.StandardError.ReadToEndAsync();
        var stdout = process.StandardOutput.ReadToEnd();
        if (!process.WaitForExit(TimeSpan.FromMinutes(10)))
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"dotnet {string.Join(' ', args)} did not finish in 10 minutes.\n{stdout}");
        }
        return new ProcessResult(process.ExitCode, stdout, stderr.Result);
    }

    public void Dispose() => Directory.Delete(Folder, recursive: true);
}

[Collection(DotnetBuildCollection.Name)]
public sealed class DocSnippetTests(DocProject project) : IClassFixture<DocProject>
{
    [Fact]
    public void The_documentation_has_its_blocks_and_the_readme_opens_with_one_that_runs()
    {
        Assert.True(project.Snippets.Count >= 9, string.Join(", ", project.Snippets));
        var first = project.Snippets.First(s => s.File == "README.md");
        Assert.True(first.Runs, $"{first} is marked compile-only, but the README's first block must run as it is.");
        Assert.Contains(project.Snippets, s => s.Continues && s.Runs);
    }

    [Fact]
    public void Every_block_builds_for_net8_and_net10()
    {
        Assert.True(project.Build.ExitCode == 0, $"{project.Build}\nThe generated sources are in {project.Folder}.");
        foreach (var framework in new[] { "net8.0", "net10.0" })
            Assert.True(File.Exists(project.ProgramPath(framework)), $"{project.ProgramPath(framework)} was not built.");
    }

    [Theory]
    [InlineData("net8.0")]
    [InlineData("net10.0")]
    public void Every_complete_block_runs_on_the_bundled_model_on_the_cpu(string framework)
    {
        Assert.True(project.Build.ExitCode == 0, project.Build.ToString());
        var run = project.RunSnippets(framework);
        Assert.True(run.ExitCode == 0, run.ToString());
        foreach (var snippet in project.Snippets.Where(s => s.Runs))
            Assert.Contains($"### {snippet.Name}", run.Stdout, StringComparison.Ordinal);
        Assert.EndsWith("### done", run.Stdout.TrimEnd(), StringComparison.Ordinal);
    }
}
