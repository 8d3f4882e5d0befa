using System.Text;
using System.Text.RegularExpressions;

namespace MiniGemini.Tests.Docs;

/// <summary>
/// One C# block of README.md or docs/*.md, as a program: its own lines, preceded by those of the blocks it continues.
/// A block whose first line is <c>// continues: …</c> goes on from the last block before it in the same file that runs;
/// a block with a line <c>// compile only: …</c> (before its code) is built but not run, the line saying what running
/// it needs.
/// </summary>
public sealed record DocSnippet(string File, int Line, IReadOnlyList<string> Code, bool Runs, bool Continues)
{
    /// <summary>Where the block starts, e.g. <c>docs/usage.md:40</c>.</summary>
    public string Name => $"{File}:{Line}";

    /// <summary>A C# identifier that names the block.</summary>
    public string ClassName => "Snippet_" + Regex.Replace(Name, "[^A-Za-z0-9]", "_");

    public override string ToString() => Name;
}

/// <summary>Reads the documentation's C# blocks and turns each into a source file of a project.</summary>
public static partial class DocSnippets
{
    const string Continues = "// continues:", CompileOnly = "// compile only:";

    /// <summary>The documentation files whose C# blocks are checked, relative to the repository root.</summary>
    public static IEnumerable<string> Files(string repositoryRoot) =>
        new[] { "README.md" }.Concat(Directory.GetFiles(Path.Combine(repositoryRoot, "docs"), "*.md")
            .Select(f => Path.GetRelativePath(repositoryRoot, f)).Order(StringComparer.Ordinal));

    /// <summary>Every C# block of the documentation, in file order.</summary>
    public static IReadOnlyList<DocSnippet> Read(string repositoryRoot)
    {
        var snippets = new List<DocSnippet>();
        foreach (var file in Files(repositoryRoot))
        {
            DocSnippet? previous = null; // the last block that runs
            foreach (var (line, code) in Blocks(File.ReadAllLines(Path.Combine(repositoryRoot, file))))
            {
                bool continues = code.Count > 0 && code[0].TrimStart().StartsWith(Continues, StringComparison.Ordinal);
                if (continues && previous is null)
                    throw new InvalidDataException($"{file}:{line}: the block says '{Continues}' but no block that runs comes before it.");
                bool compileOnly = code.TakeWhile(l => l.TrimStart().StartsWith("//", StringComparison.Ordinal) || l.Trim() == "")
                    .Any(l => l.TrimStart().StartsWith(CompileOnly, StringComparison.Ordinal));
                var snippet = continues
                    ? new DocSnippet(file, line, [.. previous!.Code, .. code], !compileOnly, Continues: true)
                    : new DocSnippet(file, line, code, !compileOnly, Continues: false);
                snippets.Add(snippet);
                if (snippet.Runs) previous = snippet;
            }
        }
        return snippets;
    }

    /// <summary>
    /// The block as a class with one method, <c>RunAsync</c>, holding its statements; its <c>using</c> directives go
    /// above the class, so the blocks of one project do not see each other's names.
    /// </summary>
    public static string ToSource(DocSnippet snippet)
    {
        var directives = snippet.Code.Where(l => UsingDirective().IsMatch(l)).Select(l => l.Trim()).Distinct();
        var body = snippet.Code.Select(l => UsingDirective().IsMatch(l) ? "" : l);
        var source = new StringBuilder();
        foreach (var directive in directives) source.AppendLine(directive);
        source.AppendLine($"// {snippet.Name}");
        source.AppendLine($"static class {snippet.ClassName}");
        source.AppendLine("{");
        source.AppendLine("    public static async System.Threading.Tasks.Task RunAsync()");
        source.AppendLine("    {");
        foreach (var line in body) source.AppendLine("        " + line);
        source.AppendLine("        await System.Threading.Tasks.Task.CompletedTask;");
        source.AppendLine("    }");
        source.AppendLine("}");
        return source.ToString();
    }

    /// <summary>A program that runs the named blocks in turn, each announced on stdout, and stops at the first that throws.</summary>
    public static string Runner(IEnumerable<DocSnippet> snippets)
    {
        var source = new StringBuilder();
        foreach (var snippet in snippets)
        {
            source.AppendLine($"System.Console.WriteLine(\"### {snippet.Name}\");");
            source.AppendLine($"await {snippet.ClassName}.RunAsync();");
            source.AppendLine("System.Console.WriteLine();");
        }
        source.AppendLine("System.Console.WriteLine(\"### done\");");
        return source.ToString();
    }

    static IEnumerable<(int Line, List<string> Code)> Blocks(string[] lines)
    {
        for (int i = 0; i < lines.Length; i++)
        {
            if (lines[i].Trim() != "```csharp") continue;
            int start = i + 1;
            var code = new List<string>();
            for (i++; i < lines.Length && lines[i].Trim() != "```"; i++) code.Add(lines[i]);
            yield return (start, code);
        }
    }

    // `using X;`, `using static X;`, `using A = X;` (not `using var x = …;`).
    [GeneratedRegex(@"^\s*using\s+(static\s+)?([A-Za-z_]\w*\s*=\s*)?[A-Za-z_][\w.]*\s*;\s*$")]
    private static partial Regex UsingDirective();
}
