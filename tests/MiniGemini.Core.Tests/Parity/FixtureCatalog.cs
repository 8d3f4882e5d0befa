using Xunit;

namespace MiniGemini.Tests.Parity;

/// <summary>The layouts of reference fixture folders; each kind has its own parity tests.</summary>
public enum FixtureKind
{
    /// <summary>HF CLIP vision model: config.json, model.safetensors, io.safetensors with hidden_states.</summary>
    ClipVit,
    /// <summary>open_clip ConvNeXt: open_clip_pytorch_model.bin and/or open_clip_model.safetensors, io.safetensors.</summary>
    ConvNeXt,
    /// <summary>Patch info mining and projector: weights.safetensors, config.json with cases, io.safetensors.</summary>
    Mining,
    /// <summary>Decoder-only LLM: config.json, model.safetensors, io.safetensors with logits.</summary>
    Llm,
    /// <summary>SentencePiece tokenizer: tokenizer.model, cases.json.</summary>
    Tokenizer,
    /// <summary>Image preprocessing: input.png, config.json, io.safetensors.</summary>
    Preprocess,
    /// <summary>Whole MGM model: model/ (config.json, weights, tokenizer), case.json, io.safetensors.</summary>
    Mgm,
}

/// <summary>
/// Finds fixture folders: the bundled ones under tests/fixtures/reference and every folder listed in
/// <c>MINIGEMINI_EXTRA_FIXTURES</c> (colon-separated). A listed folder that does not itself have a known
/// layout is searched one level down, so the root of a whole fixture set can be listed too.
/// </summary>
public static class FixtureCatalog
{
    public const string ExtraVariable = "MINIGEMINI_EXTRA_FIXTURES";
    const string BundledPrefix = "reference/";

    /// <summary>The bundled fixture root (tests/fixtures/reference), found upwards from the test binaries.</summary>
    public static string ReferenceRoot { get; } = FindReferenceRoot();

    /// <summary>Path of one bundled fixture folder, e.g. <c>Bundled("mining")</c>.</summary>
    public static string Bundled(string name) => Path.Combine(ReferenceRoot, name);

    /// <summary>
    /// Theory data: one case per folder of the kind. The case is the folder's id (<c>reference/name</c> for
    /// bundled folders, the absolute path for extra ones), so a report names every folder.
    /// </summary>
    public static TheoryData<string> Cases(FixtureKind kind)
    {
        var data = new TheoryData<string>();
        foreach (var (id, _) in Folders(kind)) data.Add(id);
        return data;
    }

    /// <summary>The absolute folder of a case id produced by <see cref="Cases"/>.</summary>
    public static string Resolve(string id) =>
        id.StartsWith(BundledPrefix, StringComparison.Ordinal) ? Path.Combine(ReferenceRoot, id[BundledPrefix.Length..]) : id;

    public static IEnumerable<(string Id, string Path)> Folders(FixtureKind kind)
    {
        foreach (var dir in Directory.GetDirectories(ReferenceRoot).OrderBy(d => d, StringComparer.Ordinal))
            if (KindOf(dir) == kind) yield return (BundledPrefix + System.IO.Path.GetFileName(dir), dir);
        foreach (var dir in ExtraFolders())
            if (KindOf(dir) == kind) yield return (dir, dir);
    }

    /// <summary>Folders listed in MINIGEMINI_EXTRA_FIXTURES (or their children when the listed folder is a root).</summary>
    public static IEnumerable<string> ExtraFolders()
    {
        var value = Environment.GetEnvironmentVariable(ExtraVariable);
        if (string.IsNullOrWhiteSpace(value)) yield break;
        foreach (var raw in value.Split(':', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            var dir = System.IO.Path.GetFullPath(raw);
            if (!Directory.Exists(dir))
                throw new DirectoryNotFoundException($"{ExtraVariable} lists '{raw}', which is not a folder.");
            if (KindOf(dir) is not null) { yield return dir; continue; }
            foreach (var child in Directory.GetDirectories(dir).OrderBy(d => d, StringComparer.Ordinal))
                if (KindOf(child) is not null) yield return child;
        }
    }

    /// <summary>The kind of a folder judged by its files, or null when it has no known layout.</summary>
    public static FixtureKind? KindOf(string dir)
    {
        bool Has(string file) => File.Exists(System.IO.Path.Combine(dir, file));
        if (Has("case.json") && Has("io.safetensors") && Has("model/config.json")) return FixtureKind.Mgm;
        if (Has("tokenizer.model") && Has("cases.json")) return FixtureKind.Tokenizer;
        if (Has("input.png") && Has("io.safetensors")) return FixtureKind.Preprocess;
        if (Has("weights.safetensors") && Has("config.json") && Has("io.safetensors")) return FixtureKind.Mining;
        if ((Has("open_clip_pytorch_model.bin") || Has("open_clip_model.safetensors")) && Has("io.safetensors")) return FixtureKind.ConvNeXt;
        if (Has("config.json") && Has("model.safetensors") && Has("io.safetensors"))
        {
            var config = File.ReadAllText(System.IO.Path.Combine(dir, "config.json"));
            return config.Contains("\"clip", StringComparison.Ordinal) ? FixtureKind.ClipVit : FixtureKind.Llm;
        }
        return null;
    }

    static string FindReferenceRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            var candidate = System.IO.Path.Combine(dir.FullName, "tests", "fixtures", "reference");
            if (Directory.Exists(candidate)) return candidate;
        }
        throw new DirectoryNotFoundException($"tests/fixtures/reference not found above {AppContext.BaseDirectory}.");
    }
}
