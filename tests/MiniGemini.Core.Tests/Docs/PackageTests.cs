using System.IO.Compression;
using System.Reflection.Metadata;
using System.Reflection.PortableExecutable;
using System.Text;
using System.Xml.Linq;
using MiniGemini.Tests.Cli;
using Xunit;

namespace MiniGemini.Tests.Docs;

/// <summary>Builds that share the library's project folders (packing, the documentation's project) run one at a time.</summary>
[CollectionDefinition(Name)]
public sealed class DotnetBuildCollection
{
    public const string Name = "dotnet builds of the library";
}

/// <summary>
/// <c>dotnet pack</c> of MiniGemini.Core and MiniGemini.Hosting into a folder feed, as a release build does
/// (<c>ContinuousIntegrationBuild</c>), once for the tests of this class.
/// </summary>
public sealed class PackedLibrary : IDisposable
{
    public PackedLibrary()
    {
        Folder = Directory.CreateTempSubdirectory("minigemini-pack-").FullName;
        Feed = Directory.CreateDirectory(Path.Combine(Folder, "feed")).FullName;
        var root = DocProject.RepositoryRoot;
        Packs = new[] { "MiniGemini.Core", "MiniGemini.Hosting" }.Select(name => DocProject.Run(root,
            ["pack", Path.Combine(root, "src", name, name + ".csproj"), "-c", "Release", "-o", Feed, "--nologo",
             "--disable-build-servers", "-v", "quiet", "-p:ContinuousIntegrationBuild=true"], rollForward: false)).ToList();
        Version = (string)XDocument.Load(Path.Combine(root, "Directory.Build.props")).Descendants("VersionPrefix").Single();
    }

    public string Folder { get; }

    public string Feed { get; }

    public IReadOnlyList<ProcessResult> Packs { get; }

    public string Version { get; }

    public string PackagePath(string id, string extension = "nupkg") => Path.Combine(Feed, $"{id}.{Version}.{extension}");

    public void Dispose() => Directory.Delete(Folder, recursive: true);
}

[Collection(DotnetBuildCollection.Name)]
public sealed class PackageTests(PackedLibrary packed) : IClassFixture<PackedLibrary>
{
    static readonly Guid SourceLinkKind = new("CC110556-A091-4D38-9FEC-25AB9A351A6A");

    [Theory]
    [InlineData("MiniGemini.Core")]
    [InlineData("MiniGemini.Hosting")]
    public void The_package_carries_its_metadata_both_frameworks_and_their_xml_docs(string id)
    {
        Assert.All(packed.Packs, p => Assert.True(p.ExitCode == 0, p.ToString()));
        using var package = ZipFile.OpenRead(packed.PackagePath(id));
        var nuspec = XDocument.Load(package.GetEntry(id + ".nuspec")!.Open()).Root!;
        var ns = nuspec.Name.Namespace;
        var metadata = nuspec.Element(ns + "metadata")!;
        string Field(string name) => (string?)metadata.Element(ns + name) ?? "";

        Assert.Equal(id, Field("id"));
        Assert.Equal(packed.Version, Field("version"));
        Assert.Equal("MiniGemini.Core contributors", Field("authors"));
        Assert.Equal("Apache-2.0", Field("license"));
        Assert.Equal("expression", (string?)metadata.Element(ns + "license")!.Attribute("type"));
        Assert.Equal("README.md", Field("readme"));
        Assert.NotNull(package.GetEntry("README.md"));
        Assert.Contains("mini-gemini", Field("tags").Split(' '));
        Assert.False(string.IsNullOrWhiteSpace(Field("description")));
        var repository = metadata.Element(ns + "repository")!;
        Assert.Equal("git", (string?)repository.Attribute("type"));
        Assert.StartsWith("https://", (string?)repository.Attribute("url"));
        Assert.Matches("^[0-9a-f]{40}$", (string?)repository.Attribute("commit") ?? "");

        var groups = metadata.Element(ns + "dependencies")!.Elements(ns + "group").Select(g => (string)g.Attribute("targetFramework")!);
        Assert.Equal(["net10.0", "net8.0"], groups.Order());
        foreach (var framework in new[] { "net8.0", "net10.0" })
        {
            var documented = XDocument.Load(package.GetEntry($"lib/{framework}/{id}.xml")!.Open()).Descendants("member")
                .Select(m => (string)m.Attribute("name")!).ToHashSet();
            using var pe = new PEReader(ReadAll(package.GetEntry($"lib/{framework}/{id}.dll")!));
            var publicTypes = PublicTypeNames(pe.GetMetadataReader()).ToList();
            Assert.NotEmpty(publicTypes);
            Assert.All(publicTypes, type => Assert.Contains("T:" + type, documented));
        }
    }

    [Theory]
    [InlineData("MiniGemini.Core")]
    [InlineData("MiniGemini.Hosting")]
    public void The_symbol_package_links_the_sources_to_the_commit_and_the_build_is_deterministic(string id)
    {
        Assert.All(packed.Packs, p => Assert.True(p.ExitCode == 0, p.ToString()));
        using var package = ZipFile.OpenRead(packed.PackagePath(id));
        using var symbols = ZipFile.OpenRead(packed.PackagePath(id, "snupkg"));
        foreach (var framework in new[] { "net8.0", "net10.0" })
        {
            using var pe = new PEReader(ReadAll(package.GetEntry($"lib/{framework}/{id}.dll")!));
            Assert.Contains(pe.ReadDebugDirectory(), e => e.Type == DebugDirectoryEntryType.Reproducible);

            using var pdb = MetadataReaderProvider.FromPortablePdbStream(ReadAll(symbols.GetEntry($"lib/{framework}/{id}.pdb")!));
            var reader = pdb.GetMetadataReader();
            var sourceLink = reader.GetCustomDebugInformation(EntityHandle.ModuleDefinition)
                .Select(reader.GetCustomDebugInformation)
                .Where(info => reader.GetGuid(info.Kind) == SourceLinkKind)
                .Select(info => Encoding.UTF8.GetString(reader.GetBlobBytes(info.Value)))
                .SingleOrDefault();
            Assert.NotNull(sourceLink);
            // {"documents":{"/_/*":"https://raw.githubusercontent.com/<owner>/<repo>/<commit>/*"}}: paths mapped, a commit named
            Assert.Matches("\"/_/\\*\":\"https://[^\"]+/[0-9a-f]{40}/\\*\"", sourceLink);
        }
    }

    [Theory]
    [InlineData("net8.0")]
    [InlineData("net10.0")]
    public void A_fresh_console_app_referencing_the_package_runs_the_readme_snippet_on_the_bundled_model(string framework)
    {
        Assert.All(packed.Packs, p => Assert.True(p.ExitCode == 0, p.ToString()));
        var app = Directory.CreateDirectory(Path.Combine(packed.Folder, "app-" + framework)).FullName;
        var versions = XDocument.Load(Path.Combine(DocProject.RepositoryRoot, "Directory.Packages.props")).Descendants("PackageVersion")
            .ToDictionary(e => (string)e.Attribute("Include")!, e => (string)e.Attribute("Version")!);
        File.WriteAllText(Path.Combine(app, "App.csproj"), $"""
            <Project Sdk="Microsoft.NET.Sdk">
              <PropertyGroup>
                <OutputType>Exe</OutputType>
                <TargetFramework>{framework}</TargetFramework>
                <Nullable>enable</Nullable>
                <ImplicitUsings>enable</ImplicitUsings>
              </PropertyGroup>
              <ItemGroup>
                <PackageReference Include="MiniGemini.Core" Version="{packed.Version}" />
                <PackageReference Include="libtorch-cpu-linux-x64" Version="{versions["libtorch-cpu-linux-x64"]}" />
              </ItemGroup>
            </Project>
            """);
        // The folder feed beside the sources the machine's own NuGet configuration names.
        File.WriteAllText(Path.Combine(app, "nuget.config"), $"""
            <?xml version="1.0" encoding="utf-8"?>
            <configuration>
              <packageSources>
                <add key="minigemini-local" value="{packed.Feed}" />
              </packageSources>
            </configuration>
            """);
        var readme = DocSnippets.Read(DocProject.RepositoryRoot).First(s => s.File == "README.md");
        File.WriteAllLines(Path.Combine(app, "Program.cs"), readme.Code);
        ForgetCachedPackages();

        var build = DocProject.Run(app, ["build", "-c", "Release", "--nologo", "--disable-build-servers", "-v", "quiet"], rollForward: false);
        Assert.True(build.ExitCode == 0, build.ToString());
        var program = Path.Combine(app, "bin", "Release", framework, "App.dll");
        var referenced = Path.Combine(Path.GetDirectoryName(program)!, "MiniGemini.Core.dll");
        Assert.True(File.Exists(referenced), $"{referenced} is missing: the app did not get the library from the package");

        var run = DocProject.Run(DocProject.MakeWorkspace(Path.Combine(app, "workspace")), [program], rollForward: true);
        Assert.True(run.ExitCode == 0, run.ToString());
        // The snippet streams the answer to stdout and nothing else.
        Assert.False(string.IsNullOrWhiteSpace(run.Stdout), $"The snippet printed no answer.\n{run}");
    }

    /// <summary>
    /// NuGet keeps a package of a given id and version once per machine; the feed's freshly packed one must not be
    /// shadowed by one packed earlier from other sources.
    /// </summary>
    void ForgetCachedPackages()
    {
        var cache = Environment.GetEnvironmentVariable("NUGET_PACKAGES") is { Length: > 0 } set
            ? set
            : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".nuget", "packages");
        var cached = Path.Combine(cache, "minigemini.core", packed.Version);
        if (Directory.Exists(cached)) Directory.Delete(cached, recursive: true);
    }

    /// <summary>The public top-level types of an assembly, as the XML documentation names them.</summary>
    static IEnumerable<string> PublicTypeNames(MetadataReader reader) =>
        from handle in reader.TypeDefinitions
        let type = reader.GetTypeDefinition(handle)
        where (type.Attributes & System.Reflection.TypeAttributes.VisibilityMask) == System.Reflection.TypeAttributes.Public
        select $"{reader.GetString(type.Namespace)}.{reader.GetString(type.Name)}";   // generic arity as in the docs: Name`1

    static MemoryStream ReadAll(ZipArchiveEntry entry)
    {
        var copy = new MemoryStream();
        using (var stream = entry.Open()) stream.CopyTo(copy);
        copy.Position = 0;
        return copy;
    }
}
