using System.Diagnostics;
using System.Globalization;

namespace MiniGemini.Benchmarks.ShapedCheckpoints;

/// <summary>
/// Writes random-weight checkpoints with the exact tensor names, shapes, dtypes and file layout of the released
/// MGM-2B, MGM-7B and MGM-7B-HD, for testing loading, memory and speed at real size without the real weights:
/// <c>shaped-checkpoint --model mgm-2b|mgm-7b|mgm-7b-hd --out DIR [--towers beside|embedded] [--seed N] [--verify none|read|build]</c>.
/// <list type="bullet">
/// <item><c>DIR/MGM-…/</c>: bf16 safetensors shards of at most 5 GB with their index, config.json, generation_config.json,
/// tokenizer.model and tokenizer_config.json.</item>
/// <item><c>--towers beside</c> (default): the towers as released, in <c>DIR/model_zoo/OpenAI/</c>: the HF CLIP folder
/// (full fp32 CLIPModel) and the open_clip ConvNeXt folder (fp32 torch.save zip). Load with
/// <c>MiniGeminiBuilder.FromPretrained(DIR/MGM-…).WithTowerSearchRoots(DIR/model_zoo/OpenAI)</c>.</item>
/// <item><c>--towers embedded</c>: the towers inside the MGM shards under MGM's keys; no tower folder is needed.</item>
/// <item><c>--verify read</c> (default) reads everything back through the library's readers; <c>build</c> also builds the
/// model on the CPU in bf16 (memory for all weights).</item>
/// </list>
/// </summary>
internal static class ShapedCheckpointConsole
{
    const string Usage = "shaped-checkpoint --model mgm-2b|mgm-7b|mgm-7b-hd --out DIR [--towers beside|embedded] [--seed N] [--verify none|read|build]";

    public static int Run(string[] args)
    {
        var options = new ConsoleArgs(args);
        if (options.Words.Count > 0) throw new ArgumentException($"Unexpected argument '{options.Words[0]}'. Usage: {Usage}");
        var modelName = options.Get("model", "");
        if (!ShapedModel.ByOption.TryGetValue(modelName, out var model))
            throw new ArgumentException($"--model '{modelName}': use {string.Join(", ", ShapedModel.ByOption.Keys)}. Usage: {Usage}");
        var outDir = options.Get("out", "");
        if (outDir.Length == 0) throw new ArgumentException($"--out DIR is required. Usage: {Usage}");
        var towers = options.Get("towers", "beside") switch
        {
            "beside" => TowerPlacement.Beside,
            "embedded" => TowerPlacement.Embedded,
            var other => throw new ArgumentException($"--towers {other}: use beside or embedded."),
        };
        ulong seed = ulong.Parse(options.Get("seed", "0"), CultureInfo.InvariantCulture);
        var verify = options.Get("verify", "read");
        if (verify is not ("none" or "read" or "build")) throw new ArgumentException($"--verify {verify}: use none, read or build.");

        var root = Path.GetFullPath(outDir);
        var layout = new ShapedLayout(root, model);
        Console.WriteLine($"{model.Name} ({model.Decoder.Layers} layers, hidden {model.Decoder.HiddenSize}, vocab {model.Decoder.VocabSize}; " +
                          $"aux {model.ImageSizeAux}, grid {model.ImageGrid}) with towers {towers.ToString().ToLowerInvariant()}, seed {seed} → {root}");

        var clock = Stopwatch.StartNew();
        var written = new List<WrittenFile>();
        void Report(WrittenFile f)
        {
            written.Add(f);
            var rate = f.Tensors > 0 && f.Seconds > 0 ? $", {f.Bytes / 1e6 / f.Seconds:F0} MB/s" : "";
            var tensors = f.Tensors > 0 ? $", {f.Tensors} tensors" : "";
            Console.WriteLine($"  {Path.GetRelativePath(root, f.Path),-100} {Size(f.Bytes),10}{tensors}, {f.Seconds:F1} s{rate}");
        }

        var checkpoint = model.CheckpointTensors(towers);
        layout.RemoveStaleShards();
        SafetensorsShardWriter.Write(layout.ModelFolder, checkpoint.Tensors, seed, onFile: Report);
        Report(ConfigFiles.Write(Path.Combine(layout.ModelFolder, "config.json"), ConfigFiles.MgmConfig(model)));
        Report(ConfigFiles.Write(Path.Combine(layout.ModelFolder, "generation_config.json"), ConfigFiles.GenerationConfig(model)));
        foreach (var f in ShapedTokenizer.Write(layout.ModelFolder, model)) Report(f);

        if (towers == TowerPlacement.Beside)
        {
            Directory.CreateDirectory(layout.ClipFolder);
            Report(SafetensorsStreamWriter.Write(Path.Combine(layout.ClipFolder, "model.safetensors"), model.ClipFileTensors().Tensors, seed));
            Report(ConfigFiles.Write(Path.Combine(layout.ClipFolder, "config.json"), ConfigFiles.ClipConfig(model.Clip)));
            Report(ConfigFiles.Write(Path.Combine(layout.ClipFolder, "preprocessor_config.json"), ConfigFiles.ClipPreprocessor(model.Clip)));
            Directory.CreateDirectory(layout.ConvNeXtFolder);
            Report(TorchZipWriter.Write(layout.ConvNeXtFile, model.ConvNeXtFileTensors().Tensors, seed));
            Report(ConfigFiles.Write(Path.Combine(layout.ConvNeXtFolder, "open_clip_config.json"), ConfigFiles.OpenClipConfig(model.ConvNeXt)));
        }
        double seconds = clock.Elapsed.TotalSeconds;
        long bytes = written.Sum(f => f.Bytes);
        Console.WriteLine($"wrote {written.Count} files, {Size(bytes)} ({checkpoint.Elements() / 1e9:F3}B parameters in the MGM checkpoint) " +
                          $"in {seconds:F1} s: {bytes / 1e6 / seconds:F0} MB/s");

        if (verify == "none") return 0;
        Console.WriteLine("checking with the library's readers:");
        var check = new ShapedCheckpointCheck(seed);
        check.CheckTensors(layout.ModelFolder, checkpoint.Tensors);
        check.CheckMgmConfig(layout.ModelFolder, model);
        check.CheckTokenizer(layout.ModelFolder, model);
        if (towers == TowerPlacement.Embedded) check.CheckEmbeddedTowers(layout.ModelFolder, model);
        else
        {
            check.CheckTensors(layout.ClipFolder, model.ClipFileTensors().Tensors);
            check.CheckTensors(layout.ConvNeXtFile, model.ConvNeXtFileTensors().Tensors);
            check.CheckTowerConfigs(layout.ClipFolder, layout.ConvNeXtFolder, model);
        }
        if (verify == "build") check.CheckBuild(layout.ModelFolder, towers == TowerPlacement.Beside ? layout.TowerRoot : null);
        Console.WriteLine(check.Problems == 0 ? "no problems" : $"{check.Problems} problem(s)");
        return check.Problems == 0 ? 0 : 1;
    }

    static string Size(long bytes) => bytes switch
    {
        >= 1_000_000_000 => $"{bytes / 1e9:F2} GB",
        >= 1_000_000 => $"{bytes / 1e6:F1} MB",
        >= 1_000 => $"{bytes / 1e3:F1} kB",
        _ => $"{bytes} B",
    };
}

/// <summary>Where the files of one model go under the output folder.</summary>
/// <param name="Root">The output folder.</param>
/// <param name="Model">The model.</param>
internal sealed record ShapedLayout(string Root, ShapedModel Model)
{
    /// <summary>The MGM checkpoint folder: <c>ROOT/MGM-…</c>.</summary>
    public string ModelFolder => Path.Combine(Root, Model.Name);

    /// <summary>The folder to pass to <c>WithTowerSearchRoots</c>: <c>ROOT/model_zoo/OpenAI</c>.</summary>
    public string TowerRoot => Path.Combine(Root, Path.GetDirectoryName(ShapedModel.VisionTowerPath)!);

    /// <summary>The CLIP tower folder, at the path config.json names relative to ROOT.</summary>
    public string ClipFolder => Path.Combine(Root, ShapedModel.VisionTowerPath);

    /// <summary>The open_clip ConvNeXt folder, at the path config.json names relative to ROOT.</summary>
    public string ConvNeXtFolder => Path.Combine(Root, ShapedModel.VisionTowerAuxPath);

    /// <summary>The open_clip weights file.</summary>
    public string ConvNeXtFile => Path.Combine(ConvNeXtFolder, "open_clip_pytorch_model.bin");

    /// <summary>
    /// Deletes the shards and index of an earlier run, whose shard count may differ (towers beside or embedded), so that
    /// no stale shard is left beside the new index.
    /// </summary>
    public void RemoveStaleShards()
    {
        if (!Directory.Exists(ModelFolder)) return;
        foreach (var file in Directory.EnumerateFiles(ModelFolder, "model*.safetensors"))
            File.Delete(file);
        File.Delete(Path.Combine(ModelFolder, SafetensorsShardWriter.IndexFile));
    }
}
