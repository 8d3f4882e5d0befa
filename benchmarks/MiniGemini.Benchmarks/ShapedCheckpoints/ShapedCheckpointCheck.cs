using System.Diagnostics;
using MiniGemini.Checkpoints;
using MiniGemini.Modeling;
using MiniGemini.Text;
using MiniGemini.Vision;

namespace MiniGemini.Benchmarks.ShapedCheckpoints;

/// <summary>
/// Reads what <see cref="ShapedCheckpointConsole"/> wrote back through the library's own readers and compares it
/// with the tensor lists: every key, dtype and shape, the values of a sample of tensors (regenerated from the seed),
/// the configs, the tokenizer's special ids and the tower architectures the library infers. Each problem is printed;
/// the count of problems is returned.
/// </summary>
internal sealed class ShapedCheckpointCheck(ulong seed)
{
    /// <summary>Tensors whose values are compared, spread over the list (the rest are checked by key, dtype and shape).</summary>
    const int SampledTensors = 12;

    /// <summary>Larger tensors are not read back, to keep the check short.</summary>
    const long MaxSampledBytes = 64L << 20;

    int _problems;

    /// <summary>Problems found so far.</summary>
    public int Problems => _problems;

    void Fail(string what)
    {
        _problems++;
        Console.WriteLine($"  PROBLEM: {what}");
    }

    /// <summary>Opens <paramref name="path"/> with <see cref="Checkpoint.Open"/> and compares it with <paramref name="expected"/>.</summary>
    public void CheckTensors(string path, IReadOnlyList<TensorSpec> expected)
    {
        var clock = Stopwatch.StartNew();
        ITensorSource source;
        try
        {
            source = Checkpoint.Open(path);
        }
        catch (ModelLoadException e)
        {
            Fail($"{path}: the library cannot open it: {e.Message}");
            return;
        }
        using (source)
        {
            var missing = expected.Select(t => t.Key).Except(source.Keys, StringComparer.Ordinal).ToList();
            var extra = source.Keys.Except(expected.Select(t => t.Key), StringComparer.Ordinal).ToList();
            if (missing.Count > 0) Fail($"{path}: {missing.Count} keys missing, e.g. {missing[0]}");
            if (extra.Count > 0) Fail($"{path}: {extra.Count} unexpected keys, e.g. {extra[0]}");
            foreach (var t in expected)
            {
                if (!source.TryGetInfo(t.Key, out var info)) continue;
                if (!info.Shape.SequenceEqual(t.Shape)) Fail($"{t.Key}: shape {info.ShapeText}, expected {t.ShapeText}");
                if (StorageTypes.SafetensorsName(info.DType) != t.Type.SafetensorsName()) Fail($"{t.Key}: dtype {info.DType}, expected {t.Type}");
            }
            var small = expected.Where(t => t.Bytes <= MaxSampledBytes).ToList();
            int count = Math.Min(SampledTensors, small.Count);
            var sample = Enumerable.Range(0, count)
                .Select(i => small[(int)((long)i * (small.Count - 1) / Math.Max(1, count - 1))]).Distinct().ToList();
            foreach (var t in sample) CompareValues(source, t);
            Console.WriteLine($"  read back {path}: {expected.Count} tensors by key/dtype/shape, {sample.Count} by value, {clock.Elapsed.TotalSeconds:F1} s");
        }
    }

    void CompareValues(ITensorSource source, TensorSpec t)
    {
        if (!source.TryGetInfo(t.Key, out _)) return;
        var expected = TensorValues.All(t, seed);
        using var tensor = source.Load(t.Key);
        var actual = new byte[expected.Length];
        TensorMemory.ForEachChunk(tensor, (chunk, at) => chunk.CopyTo(actual.AsSpan((int)at)));
        if (!actual.AsSpan().SequenceEqual(expected)) Fail($"{t.Key}: the values read back differ from those written");
    }

    /// <summary>Parses the MGM config with the library and compares the fields that steer loading.</summary>
    public void CheckMgmConfig(string folder, ShapedModel model)
    {
        try
        {
            var config = MgmConfig.Load(Path.Combine(folder, "config.json"));
            var llm = config.Llm;
            var d = model.Decoder;
            if ((llm.VocabSize, llm.HiddenSize, llm.NumHiddenLayers, llm.NumAttentionHeads, llm.NumKeyValueHeads, llm.HeadDim, llm.IntermediateSize, llm.TieWordEmbeddings)
                != (d.VocabSize, d.HiddenSize, d.Layers, d.Heads, d.KvHeads, d.HeadDim, d.IntermediateSize, d.TiedHead))
                Fail($"config.json: the library reads the LLM as {llm}");
            var family = model.Vocabulary == VocabularyLayout.Gemma ? LlmFamily.Gemma : LlmFamily.Llama;
            if (llm.Family != family) Fail($"config.json: the library takes the LLM for {llm.Family}, expected {family}");
            if ((config.ImageSizeAux, config.ImageGrid, config.ImageGlobal, config.MmHiddenSize, config.MmHiddenSizeAux)
                != (model.ImageSizeAux, model.ImageGrid, model.ImageGlobal, model.Multimodal.ClipWidth, model.Multimodal.AuxWidth))
                Fail("config.json: the library reads other image settings");
            Console.WriteLine($"  config.json: {llm.Family}, {llm.NumHiddenLayers} layers, hidden {llm.HiddenSize}, aux {config.ImageSizeAux}, grid {config.ImageGrid}, global {config.ImageGlobal}");
        }
        catch (ModelLoadException e)
        {
            Fail($"config.json: {e.Message}");
        }
    }

    /// <summary>Loads the tokenizer with the library and checks its size and special ids.</summary>
    public void CheckTokenizer(string folder, ShapedModel model)
    {
        try
        {
            var clock = Stopwatch.StartNew();
            var tokenizer = MiniGeminiTokenizer.FromFolder(folder);
            var (bos, eos, pad) = model.SpecialIds;
            if (tokenizer.VocabSize != model.Decoder.VocabSize) Fail($"tokenizer: {tokenizer.VocabSize} pieces, expected {model.Decoder.VocabSize}");
            if ((tokenizer.BosId, tokenizer.EosId, tokenizer.PadId) != (bos, eos, pad))
                Fail($"tokenizer: bos/eos/pad {tokenizer.BosId}/{tokenizer.EosId}/{tokenizer.PadId}, expected {bos}/{eos}/{pad}");
            if (model.Vocabulary == VocabularyLayout.Gemma
                && (tokenizer.UnkId, tokenizer.TokenToId("<start_of_turn>"), tokenizer.TokenToId("<end_of_turn>")) != (3, 106, 107))
                Fail("tokenizer: <unk>, <start_of_turn>, <end_of_turn> are not 3, 106, 107");
            if (model.Vocabulary == VocabularyLayout.Llama && tokenizer.UnkId != 0) Fail($"tokenizer: <unk> is {tokenizer.UnkId}, expected 0");
            var ids = tokenizer.Encode("a cat on the mat", addBos: true);
            Console.WriteLine($"  tokenizer: {tokenizer.VocabSize} pieces, bos {tokenizer.BosId} eos {tokenizer.EosId} pad {tokenizer.PadId} unk {tokenizer.UnkId}; " +
                              $"\"a cat on the mat\" → [{string.Join(", ", ids)}] → \"{tokenizer.Decode(ids)}\", {clock.Elapsed.TotalSeconds:F1} s");
        }
        catch (ModelLoadException e)
        {
            Fail($"tokenizer: {e.Message}");
        }
    }

    /// <summary>Checks that the library infers ViT-L/14-336 and ConvNeXt-Large from the embedded towers' shapes.</summary>
    public void CheckEmbeddedTowers(string folder, ShapedModel model)
    {
        using var source = Checkpoint.Open(folder);
        var clip = ClipVisionTransformer.InferConfig(source, MgmCheckpointKeys.ClipTower);
        var c = model.Clip;
        if ((clip.HiddenSize, clip.NumHiddenLayers, clip.NumAttentionHeads, clip.IntermediateSize, clip.PatchSize, clip.ImageSize)
            != (c.Vision.HiddenSize, c.Vision.Layers, c.Vision.Heads, c.Vision.IntermediateSize, c.PatchSize, c.ImageSize))
            Fail($"embedded CLIP: the library infers {clip}");
        var convNeXt = ConvNeXtConfig.Infer(source, MgmCheckpointKeys.AuxStem, MgmCheckpointKeys.AuxStages);
        if (!convNeXt.Depths.SequenceEqual(model.ConvNeXt.Trunk.Depths) || !convNeXt.Dims.SequenceEqual(model.ConvNeXt.Trunk.Dims))
            Fail($"embedded ConvNeXt: the library infers depths {string.Join("/", convNeXt.Depths)}, dims {string.Join("/", convNeXt.Dims)}");
        Console.WriteLine($"  embedded towers: CLIP {clip.HiddenSize}×{clip.NumHiddenLayers} ({clip.NumAttentionHeads} heads, {clip.ImageSize} px), ConvNeXt dims {string.Join("/", convNeXt.Dims)}");
    }

    /// <summary>Parses the tower folders' configs with the library.</summary>
    public void CheckTowerConfigs(string clipFolder, string convNeXtFolder, ShapedModel model)
    {
        try
        {
            var clip = ClipVisionConfig.Load(Path.Combine(clipFolder, "config.json"));
            var c = model.Clip;
            if ((clip.HiddenSize, clip.NumHiddenLayers, clip.NumAttentionHeads, clip.IntermediateSize, clip.PatchSize, clip.ImageSize, clip.HiddenAct)
                != (c.Vision.HiddenSize, c.Vision.Layers, c.Vision.Heads, c.Vision.IntermediateSize, c.PatchSize, c.ImageSize, "quick_gelu"))
                Fail($"CLIP config.json: the library reads {clip}");
            var pre = PreprocessorConfig.Load(Path.Combine(clipFolder, "preprocessor_config.json"));
            if (pre.Size != c.ImageSize || pre.CropSize != c.ImageSize || pre.Resample != 3) Fail($"preprocessor_config.json: the library reads {pre}");
            var openClip = ConvNeXtConfig.FromOpenClip(OpenClipConfig.Load(Path.Combine(convNeXtFolder, "open_clip_config.json")));
            if (openClip is null || !openClip.Dims.SequenceEqual(model.ConvNeXt.Trunk.Dims) || !openClip.Depths.SequenceEqual(model.ConvNeXt.Trunk.Depths))
                Fail("open_clip_config.json: the library does not read it as ConvNeXt-Large");
            Console.WriteLine($"  tower configs: CLIP {clip.HiddenSize}×{clip.NumHiddenLayers}, {clip.NumAttentionHeads} heads, {clip.ImageSize} px; open_clip {string.Join("/", openClip?.Dims ?? [])}");
        }
        catch (ModelLoadException e)
        {
            Fail($"tower configs: {e.Message}");
        }
    }

    /// <summary>Builds the whole model with <see cref="MiniGeminiBuilder"/> on the CPU in bf16 (needs memory for all the weights).</summary>
    public void CheckBuild(string folder, string? towerRoot)
    {
        var clock = Stopwatch.StartNew();
        try
        {
            var builder = MiniGeminiBuilder.FromPretrained(folder).OnDevice("cpu").WithPrecision(ModelPrecision.BFloat16);
            if (towerRoot is not null) builder = builder.WithTowerSearchRoots(towerRoot);
            using var model = builder.Build();
            Console.WriteLine($"  built {model.Name}: {model.Config.Llm.Family}, template {model.Template.Name}, {model.ImageTokensPerImage} image tokens, " +
                              $"{clock.Elapsed.TotalSeconds:F1} s");
        }
        catch (ModelLoadException e)
        {
            Fail($"MiniGeminiBuilder.Build: {e.Message}");
        }
    }
}
