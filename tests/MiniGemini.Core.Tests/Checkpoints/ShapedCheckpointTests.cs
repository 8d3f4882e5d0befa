using System.Buffers.Binary;
using System.IO.Compression;
using System.Text;
using System.Text.Json;
using MiniGemini.Benchmarks.ShapedCheckpoints;
using MiniGemini.Checkpoints;
using MiniGemini.Modeling;
using MiniGemini.Tests.Parity;
using MiniGemini.Text;
using MiniGemini.Vision;
using TorchSharp;
using Xunit;

namespace MiniGemini.Tests.Checkpoints;

/// <summary>
/// The shaped-checkpoint tool (benchmarks, <c>shaped-checkpoint</c>): its tensor lists against the parameter counts of
/// the released models and against the reference fixtures' keys, and its writers against the library's readers, all
/// without writing more than a tokenizer's few MB.
/// </summary>
public sealed class ShapedCheckpointTests : IDisposable
{
    readonly string _dir = Directory.CreateTempSubdirectory("mgm-shaped-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    static TensorList Decoder(DecoderShape shape)
    {
        var list = new TensorList(ElementType.BFloat16);
        shape.AddBody(list);
        shape.AddHead(list);
        return list;
    }

    // ---------------------------------------------------------------- (a) parameter counts

    [Fact]
    public void Gemma_2B_has_its_2_506_172_416_parameters_and_no_lm_head()
    {
        // embed 256000·2048 = 524,288,000; per layer q 2048·2048 + k, v 256·2048 + o 2048·2048 + MLP 3·16384·2048
        // + 2 norms·2048 = 110,104,576, × 18 = 1,981,882,368; final norm 2048. Tied head: not stored.
        var list = Decoder(DecoderShape.Gemma2B);
        Assert.Equal(2_506_172_416L, list.Elements());
        Assert.Equal(1 + 18 * 9 + 1, list.Tensors.Count);
        Assert.DoesNotContain(list.Tensors, t => t.Key == "lm_head.weight");
        Assert.All(list.Tensors.Where(t => t.Key.EndsWith("norm.weight", StringComparison.Ordinal)), t => Assert.Equal(Init.Zero, t.Init));
    }

    [Fact]
    public void Vicuna_7B_has_Llama_2_7Bs_6_738_415_616_parameters()
    {
        // embed and lm_head 32000·4096 each = 131,072,000; per layer 4·4096² + 3·11008·4096 + 2·4096 = 202,383,360, × 32; final norm 4096.
        var list = Decoder(DecoderShape.Vicuna7B);
        Assert.Equal(6_738_415_616L, list.Elements());
        Assert.Equal(1 + 32 * 9 + 1 + 1, list.Tensors.Count);
        Assert.Equal(new long[] { 32_000, 4096 }, list.Tensors.Single(t => t.Key == "lm_head.weight").Shape);
        Assert.All(list.Tensors.Where(t => t.Key.EndsWith("norm.weight", StringComparison.Ordinal)), t => Assert.Equal(Init.One, t.Init));
    }

    [Fact]
    public void CLIP_ViT_L_14_336_has_303_507_456_vision_and_427_944_193_parameters_in_all()
    {
        var list = new TensorList(ElementType.Float32);
        ClipShape.VitLarge14At336.AddFullModel(list);
        var parameters = list.Tensors.Where(t => t.Type != ElementType.Int64).ToList();
        // class 1024 + patch 1024·3·14·14 + positions 577·1024 + pre-LN 2048 + 24 layers · 12,596,224 + post-LN 2048.
        Assert.Equal(303_507_456L, parameters.Where(t => t.Key.StartsWith("vision_model.", StringComparison.Ordinal)).Sum(t => t.Elements));
        // + text tower 123,060,480 + visual_projection 768·1024 + text_projection 768·768 + logit_scale.
        Assert.Equal(427_944_193L, parameters.Sum(t => t.Elements));
        Assert.Equal(3 + 2 + 24 * 16 + 2, parameters.Count(t => t.Key.StartsWith("vision_model.", StringComparison.Ordinal)));
        Assert.Equal(new long[] { 1, 577 }, list.Tensors.Single(t => t.Key == "vision_model.embeddings.position_ids").Shape);
        Assert.Equal(Math.Log(1 / 0.07), list.Tensors.Single(t => t.Key == "logit_scale").Init.Value, 12);
    }

    [Fact]
    public void ConvNeXt_Large_trunk_has_196_227_264_parameters_in_340_tensors()
    {
        var list = new TensorList(ElementType.Float32);
        OpenClipConvNeXtShape.LargeD320.AddFullModel(list);
        var trunk = list.Tensors.Where(t => t.Key.StartsWith("visual.trunk.stem.", StringComparison.Ordinal) || t.Key.StartsWith("visual.trunk.stages.", StringComparison.Ordinal)).ToList();
        // timm convnext_large is 197,767,336 with its classifier (head.norm 3072 + fc 1536·1000 + 1000); without: 196,227,264.
        Assert.Equal(196_227_264L, trunk.Sum(t => t.Elements));
        Assert.Equal(340, trunk.Count); // spec §3.5: 36 blocks × 9 + 4 stem + 12 downsample
        Assert.All(trunk.Where(t => t.Key.EndsWith(".gamma", StringComparison.Ordinal)), t => Assert.Equal(1e-6, t.Init.Value));
        // + head norm 3072, projection MLP 1536·1536 + 1536 + 768·1536, text tower 152,001,792, logit_scale.
        Assert.Equal(351_772_609L, list.Elements());
    }

    [Fact]
    public void The_MGM_checkpoints_add_mining_and_projector_and_split_into_5_GB_shards()
    {
        // mining: query LN 2·1024 + 1024² + 1024; aux and val LN 2·2880 + 1024·2880 + 1024 each = 6,963,456.
        // projector: 1024·H + H + H² + H.
        var mgm2B = ShapedModel.Mgm2B.CheckpointTensors(TowerPlacement.Beside);
        var mgm7B = ShapedModel.Mgm7B.CheckpointTensors(TowerPlacement.Beside);
        Assert.Equal(2_506_172_416L + 6_963_456 + 6_295_552, mgm2B.Elements());
        Assert.Equal(6_738_415_616L + 6_963_456 + 20_979_712, mgm7B.Elements());
        Assert.Equal(6_963_456L, mgm7B.Elements("model.vlm_uni_"));
        Assert.Equal(mgm7B.Elements(), ShapedModel.Mgm7BHd.CheckpointTensors(TowerPlacement.Beside).Elements());

        var embedded = ShapedModel.Mgm7B.CheckpointTensors(TowerPlacement.Embedded);
        Assert.Equal(mgm7B.Elements() + 303_507_456 + 196_227_264, embedded.Elements());
        Assert.Equal(391, embedded.Tensors.Count(t => t.Key.StartsWith(MgmCheckpointKeys.ClipTower, StringComparison.Ordinal)));
        Assert.Equal(340, embedded.Tensors.Count(t => t.Key.StartsWith("model.vision_tower_aux.", StringComparison.Ordinal)));
        Assert.All(embedded.Tensors, t => Assert.Equal(ElementType.BFloat16, t.Type));

        Assert.Equal(2, SafetensorsShardWriter.Split(mgm2B.Tensors, SafetensorsShardWriter.DefaultMaxShardBytes).Count);
        var shards = SafetensorsShardWriter.Split(mgm7B.Tensors, SafetensorsShardWriter.DefaultMaxShardBytes);
        Assert.Equal(3, shards.Count);
        Assert.All(shards, s => Assert.True(s.Sum(t => t.Bytes) <= SafetensorsShardWriter.DefaultMaxShardBytes));
        Assert.Equal("lm_head.weight", shards[^1][^1].Key);
    }

    // ---------------------------------------------------------------- (b) torch zip writer

    static IReadOnlyList<TensorSpec> SmallTensors(ElementType type)
    {
        var list = new TensorList(type);
        list.Linear("layer.fc", 5, 3)
            .Add("layer.scale", Init.Constant(1e-6), 7)
            .Conv2d("stem", 3, 4, 2)
            .Add("logit_scale", Init.Constant(Math.Log(1 / 0.07)))
            .Add("position_ids", ElementType.Int64, Init.Positions, 1, 9)
            .Add("big", Init.Uniform, 70_000); // element count above BININT2, and not a multiple of 8 bytes for bf16
        return list.Tensors;
    }

    static byte[] BytesOf(torch.Tensor tensor)
    {
        var bytes = new byte[tensor.NumberOfElements * tensor.ElementSize];
        TensorMemory.ForEachChunk(tensor, (chunk, at) => chunk.CopyTo(bytes.AsSpan((int)at)));
        return bytes;
    }

    static torch.ScalarType ScalarType(ElementType type) => type switch
    {
        ElementType.BFloat16 => torch.ScalarType.BFloat16,
        ElementType.Float32 => torch.ScalarType.Float32,
        _ => torch.ScalarType.Int64,
    };

    static void AssertReadsBack(ITensorSource source, IReadOnlyList<TensorSpec> tensors, ulong seed)
    {
        Assert.Equal(tensors.Select(t => t.Key).Order(StringComparer.Ordinal), source.Keys.Order(StringComparer.Ordinal));
        foreach (var t in tensors)
        {
            Assert.True(source.TryGetInfo(t.Key, out var info));
            Assert.Equal(t.Shape, info.Shape);
            Assert.Equal(ScalarType(t.Type), info.DType);
            using var value = source.Load(t.Key);
            Assert.Equal(TensorValues.All(t, seed), BytesOf(value));
        }
    }

    [Fact]
    public void The_torch_zip_writer_round_trips_through_TorchPickleCheckpoint()
    {
        var tensors = SmallTensors(ElementType.Float32);
        var path = Path.Combine(_dir, "open_clip_pytorch_model.bin");
        TorchZipWriter.Write(path, tensors, seed: 5);

        using (var source = TorchPickleCheckpoint.Open(path)) AssertReadsBack(source, tensors, seed: 5);
        using (var viaFolder = Checkpoint.Open(_dir)) Assert.Equal(tensors.Count, viaFolder.Keys.Count);
        using (var scalar = TorchPickleCheckpoint.Open(path))
        using (var logitScale = scalar.Load("logit_scale"))
            Assert.Equal((float)Math.Log(1 / 0.07), logitScale.item<float>());

        // torch's layout: one folder named after the file, data.pkl first, version last, CRCs right.
        using var zip = ZipFile.OpenRead(path);
        var names = zip.Entries.Select(e => e.FullName).ToList();
        Assert.Equal("open_clip_pytorch_model/data.pkl", names[0]);
        Assert.Equal("open_clip_pytorch_model/byteorder", names[1]);
        Assert.Equal("open_clip_pytorch_model/version", names[^1]);
        Assert.Equal(Enumerable.Range(0, tensors.Count).Select(i => $"open_clip_pytorch_model/data/{i}"), names.Skip(2).Take(tensors.Count));
        foreach (var entry in zip.Entries)
        {
            using var stream = entry.Open();
            using var copy = new MemoryStream();
            stream.CopyTo(copy);
            Assert.Equal(entry.Crc32, Crc32.Of(copy.ToArray()));
        }
    }

    [Fact]
    public void Zip_entries_start_on_64_byte_boundaries_as_torch_writes_them()
    {
        var path = Path.Combine(_dir, "aligned.bin");
        TorchZipWriter.Write(path, SmallTensors(ElementType.BFloat16), seed: 1);
        var file = File.ReadAllBytes(path);
        int entries = 0;
        for (long at = 0; BinaryPrimitives.ReadUInt32LittleEndian(file.AsSpan((int)at)) == 0x04034b50; entries++)
        {
            var h = file.AsSpan((int)at);
            long size = BinaryPrimitives.ReadUInt32LittleEndian(h[22..]);
            int name = BinaryPrimitives.ReadUInt16LittleEndian(h[26..]), extra = BinaryPrimitives.ReadUInt16LittleEndian(h[28..]);
            Assert.Equal("FB", Encoding.ASCII.GetString(h.Slice(30 + name, 2)));
            long data = at + 30 + name + extra;
            Assert.Equal(0, data % ZipStoreWriter.Alignment);
            at = data + size;
        }
        Assert.Equal(SmallTensors(ElementType.BFloat16).Count + 3, entries);
    }

    [Fact]
    public void Crc32_is_the_zip_checksum()
    {
        Assert.Equal(0xCBF43926u, Crc32.Of(Encoding.ASCII.GetBytes("123456789")));
        var data = new byte[1000];
        new Random(3).NextBytes(data);
        var crc = new Crc32();
        crc.Append(data.AsSpan(0, 333));
        crc.Append(data.AsSpan(333));
        Assert.Equal(Crc32.Of(data), crc.Value);
    }

    // ---------------------------------------------------------------- (c) safetensors shards

    [Fact]
    public void Shards_under_a_tiny_limit_open_as_one_ShardedCheckpoint_with_equal_values()
    {
        var tensors = SmallTensors(ElementType.BFloat16);
        var written = SafetensorsShardWriter.Write(_dir, tensors, seed: 9, maxShardBytes: 100);

        var index = Path.Combine(_dir, SafetensorsShardWriter.IndexFile);
        int shards = written.Count - 1;
        Assert.True(shards > 2);
        Assert.Equal(index, written[^1].Path);
        Assert.True(File.Exists(Path.Combine(_dir, $"model-00001-of-{shards:D5}.safetensors")));
        using (var json = JsonDocument.Parse(File.ReadAllText(index)))
        {
            Assert.Equal(tensors.Sum(t => t.Bytes), json.RootElement.GetProperty("metadata").GetProperty("total_size").GetInt64());
            var keys = json.RootElement.GetProperty("weight_map").EnumerateObject().Select(p => p.Name).ToList();
            Assert.Equal(keys.Order(StringComparer.Ordinal), keys);
        }
        using (var sharded = ShardedCheckpoint.Open(index)) AssertReadsBack(sharded, tensors, seed: 9);
        using (var viaFolder = Checkpoint.Open(_dir)) AssertReadsBack(viaFolder, tensors, seed: 9);
    }

    [Fact]
    public void A_checkpoint_under_the_limit_is_one_model_safetensors_without_an_index()
    {
        var tensors = SmallTensors(ElementType.Float32);
        var written = SafetensorsShardWriter.Write(_dir, tensors, seed: 2);
        Assert.Equal(Path.Combine(_dir, "model.safetensors"), Assert.Single(written).Path);
        using var file = SafetensorsFile.Open(Path.Combine(_dir, "model.safetensors"));
        AssertReadsBack(file, tensors, seed: 2);
        Assert.Equal("pt", file.Metadata["format"]);
    }

    [Fact]
    public void Values_are_the_same_whatever_the_chunk_size_and_small_and_uniform()
    {
        var spec = new TensorSpec("w", [1000, 3], ElementType.BFloat16, Init.Uniform);
        var whole = TensorValues.All(spec, seed: 4);
        var values = new TensorValues(spec, seed: 4);
        var chunked = new List<byte>();
        values.CopyTo(bytes => chunked.AddRange(bytes.ToArray()), new byte[64]);
        Assert.Equal(whole, chunked.ToArray());
        Assert.NotEqual(whole, TensorValues.All(spec, seed: 5));

        var floats = Enumerable.Range(0, whole.Length / 2)
            .Select(i => (double)BitConverter.Int32BitsToSingle(BinaryPrimitives.ReadUInt16LittleEndian(whole.AsSpan(2 * i)) << 16)).ToList();
        Assert.True(floats.Max(Math.Abs) <= 0.02 + 0.0001); // bf16 rounds to steps of 1.2e-4 there
        double mean = floats.Average();
        Assert.InRange(mean, -0.002, 0.002);
        Assert.InRange(Math.Sqrt(floats.Average(x => (x - mean) * (x - mean))), 0.010, 0.013); // uniform on ±0.02: 0.02 / √3 ≈ 0.0115
    }

    // ---------------------------------------------------------------- (d) tokenizer and configs

    [Fact]
    public void The_Gemma_tokenizer_model_loads_with_Gemmas_special_ids()
    {
        ShapedTokenizer.Write(_dir, ShapedModel.Mgm2B);
        var tokenizer = MiniGeminiTokenizer.FromFolder(_dir);
        Assert.Equal(256_000, tokenizer.VocabSize);
        Assert.Equal((0, 1, 2, 3), (tokenizer.PadId, tokenizer.EosId, tokenizer.BosId, tokenizer.UnkId));
        Assert.Equal(106, tokenizer.TokenToId("<start_of_turn>"));
        Assert.Equal(107, tokenizer.TokenToId("<end_of_turn>"));
        Assert.Equal("gemma", ConversationTemplate.Select(tokenizer, "mini_gemini_gemma", ["MiniGeminiGemmaForCausalLM"]).Name);
        var ids = tokenizer.Encode("<start_of_turn>user\nhello there", addBos: true, parseSpecialTokens: true);
        Assert.Equal(new[] { 2, 106 }, ids[..2]);
        Assert.Equal("user\nhello there", tokenizer.Decode(ids));
    }

    [Fact]
    public void The_Vicuna_tokenizer_model_loads_with_Llamas_special_ids()
    {
        ShapedTokenizer.Write(_dir, ShapedModel.Mgm7B);
        var tokenizer = MiniGeminiTokenizer.FromFolder(_dir);
        Assert.Equal(32_000, tokenizer.VocabSize);
        Assert.Equal((0, 1, 2, 0), (tokenizer.UnkId, tokenizer.BosId, tokenizer.EosId, tokenizer.PadId));
        var ids = tokenizer.Encode("A chat between a curious user", addBos: true);
        Assert.Equal(1, ids[0]);
        Assert.Equal("A chat between a curious user", tokenizer.Decode(ids));
    }

    [Theory]
    [InlineData("mgm-2b", LlmFamily.Gemma, 768, 1, false, 576)]
    [InlineData("mgm-7b", LlmFamily.Llama, 768, 1, false, 576)]
    [InlineData("mgm-7b-hd", LlmFamily.Llama, 1536, 2, true, 2880)]
    public void The_configs_parse_with_the_released_values(string option, LlmFamily family, int aux, int grid, bool global, int imageTokens)
    {
        var model = ShapedModel.ByOption[option];
        var config = MgmConfig.Parse(ConfigFiles.MgmConfig(model).ToJsonString());
        Assert.Equal(family, config.Llm.Family);
        Assert.Equal((model.Decoder.HiddenSize, model.Decoder.Layers, model.Decoder.HeadDim, model.Decoder.KvHeads), (config.Llm.HiddenSize, config.Llm.NumHiddenLayers, config.Llm.HeadDim, config.Llm.NumKeyValueHeads));
        Assert.Equal(model.Decoder.TiedHead, config.Llm.TieWordEmbeddings);
        Assert.Equal(torch.ScalarType.BFloat16, config.Llm.DType);
        Assert.Equal((aux, grid, global, 1024, 2880), (config.ImageSizeAux, config.ImageGrid, config.ImageGlobal, config.MmHiddenSize, config.MmHiddenSizeAux));
        Assert.Equal(ShapedModel.VisionTowerAuxPath, config.VisionTowerAux);
        int views = grid * grid + (global ? 1 : 0);
        Assert.Equal(imageTokens, views * 576);

        var clip = ClipVisionConfig.Parse(ConfigFiles.ClipConfig(model.Clip).ToJsonString());
        Assert.Equal((1024, 24, 16, 4096, 14, 336, "quick_gelu"), (clip.HiddenSize, clip.NumHiddenLayers, clip.NumAttentionHeads, clip.IntermediateSize, clip.PatchSize, clip.ImageSize, clip.HiddenAct));
        var path = Path.Combine(_dir, "open_clip_config.json");
        ConfigFiles.Write(path, ConfigFiles.OpenClipConfig(model.ConvNeXt));
        Assert.Equal(new[] { 192, 384, 768, 1536 }, ConvNeXtConfig.FromOpenClip(OpenClipConfig.Load(path))!.Dims);
    }

    [Fact]
    public void Floats_in_the_configs_are_written_as_Python_writes_them()
    {
        Assert.Equal(["1e-06", "1e-05", "0.0", "10000.0", "0.02", "2.6592"],
            new[] { 1e-6, 1e-5, 0.0, 10000.0, 0.02, 2.6592 }.Select(v => ConfigFiles.Float(v).ToJsonString()));
        var json = ConfigFiles.MgmConfig(ShapedModel.Mgm2B).ToJsonString();
        Assert.Contains("\"rms_norm_eps\":1e-06", json, StringComparison.Ordinal);
        Assert.Contains("\"rope_theta\":10000.0", json, StringComparison.Ordinal);
    }

    // ---------------------------------------------------------------- (e) keys and shapes the library expects

    /// <summary>A tensor list seen as a checkpoint of shapes only: what the library infers architectures from.</summary>
    sealed class ShapeOnlySource(IReadOnlyList<TensorSpec> tensors) : ITensorSource
    {
        readonly Dictionary<string, TensorSpec> _byKey = tensors.ToDictionary(t => t.Key, StringComparer.Ordinal);

        public string Location => "shapes";

        public IReadOnlyCollection<string> Keys => _byKey.Keys;

        public bool TryGetInfo(string key, out TensorInfo info)
        {
            info = _byKey.TryGetValue(key, out var t) ? new TensorInfo(key, ScalarType(t.Type), t.Shape, Location) : null!;
            return info is not null;
        }

        public torch.Tensor Load(string key) => throw new NotSupportedException("shapes only");

        public void Dispose() { }
    }

    [Fact]
    public void The_library_infers_ViT_L_14_336_and_ConvNeXt_Large_from_the_embedded_towers()
    {
        using var source = new ShapeOnlySource(ShapedModel.Mgm7BHd.CheckpointTensors(TowerPlacement.Embedded).Tensors);
        var clip = ClipVisionTransformer.InferConfig(source, MgmCheckpointKeys.ClipTower);
        Assert.Equal((1024, 24, 16, 4096, 14, 336), (clip.HiddenSize, clip.NumHiddenLayers, clip.NumAttentionHeads, clip.IntermediateSize, clip.PatchSize, clip.ImageSize));
        Assert.True(TowerResolver.IsConvNeXtEmbedded(source));
        var convNeXt = ConvNeXtConfig.Infer(source, MgmCheckpointKeys.AuxStem, MgmCheckpointKeys.AuxStages);
        Assert.Equal(ConvNeXtConfig.LargeD320.Depths, convNeXt.Depths);
        Assert.Equal(ConvNeXtConfig.LargeD320.Dims, convNeXt.Dims);

        using var clipFile = new ShapeOnlySource(ShapedModel.Mgm7B.ClipFileTensors().Tensors);
        Assert.Equal("vision_model.", ClipVisionTransformer.FindFilePrefix(clipFile));
        using var openClip = new ShapeOnlySource(ShapedModel.Mgm7B.ConvNeXtFileTensors().Tensors);
        Assert.Equal(ConvNeXtEncoder.OpenClipPrefix, ConvNeXtEncoder.FindPrefix(openClip));
        // Every key of the tower files is the tower's own or one that its loader skips by rule.
        Assert.All(clipFile.Keys, k => Assert.True(k.StartsWith("vision_model.", StringComparison.Ordinal) || ClipVisionTransformer.IsForeignKey(k), k));
        Assert.All(openClip.Keys, k => Assert.True(k.StartsWith(ConvNeXtEncoder.OpenClipPrefix + "stem.", StringComparison.Ordinal)
            || k.StartsWith(ConvNeXtEncoder.OpenClipPrefix + "stages.", StringComparison.Ordinal) || ConvNeXtEncoder.IsForeignKey(k), k));
    }

    /// <summary>The fixtures' towers and LLMs, made by transformers/timm/open_clip, as shapes for the same builders.</summary>
    static (ClipShape Clip, ConvNeXtShape ConvNeXt) FixtureTowers(string clipFolder)
    {
        var v = ClipVisionConfig.Load(Path.Combine(clipFolder, "config.json"));
        var clip = ClipShape.VitLarge14At336 with
        {
            Vision = new ClipTowerShape(v.HiddenSize, v.NumHiddenLayers, v.NumAttentionHeads, v.IntermediateSize),
            PatchSize = v.PatchSize, ImageSize = v.ImageSize,
        };
        var o = OpenClipConfig.Load(Path.Combine(FixtureCatalog.Bundled("convnext-tiny"), "open_clip_config.json"));
        return (clip, new ConvNeXtShape(o.Depths!, o.Dims!));
    }

    static ShapedModel FixtureModel(ShapedModel released, string llmFolder, string clipFolder)
    {
        var llm = LlmConfig.Load(Path.Combine(llmFolder, "config.json"));
        var (clip, convNeXt) = FixtureTowers(clipFolder);
        return released with
        {
            Decoder = released.Decoder with
            {
                VocabSize = llm.VocabSize, HiddenSize = llm.HiddenSize, Layers = llm.NumHiddenLayers, Heads = llm.NumAttentionHeads,
                KvHeads = llm.NumKeyValueHeads, HeadDim = llm.HeadDim, IntermediateSize = llm.IntermediateSize, TiedHead = llm.TieWordEmbeddings,
            },
            Clip = clip,
            ConvNeXt = released.ConvNeXt with { Trunk = convNeXt },
        };
    }

    static void AssertSameKeysAndShapes(IEnumerable<TensorSpec> ours, ITensorSource reference, Func<string, bool>? only = null)
    {
        only ??= _ => true;
        var expected = reference.Keys.Where(only).Order(StringComparer.Ordinal).ToList();
        var actual = ours.Where(t => only(t.Key)).ToList();
        Assert.Equal(expected, actual.Select(t => t.Key).Order(StringComparer.Ordinal));
        foreach (var t in actual)
        {
            Assert.True(reference.TryGetInfo(t.Key, out var info));
            Assert.True(info.Shape.SequenceEqual(t.Shape), $"{t.Key}: fixture {info.ShapeText}, ours {t.ShapeText}");
        }
    }

    [Fact]
    public void At_fixture_size_the_MGM_list_has_the_keys_and_shapes_of_the_reference_checkpoints()
    {
        var tiny = FixtureCatalog.Bundled("mgm-tiny");
        var model = FixtureModel(ShapedModel.Mgm7B, Path.Combine(tiny, "model"), Path.Combine(tiny, "clip-vit"));
        using (var reference = Checkpoint.Open(Path.Combine(tiny, "model")))
            AssertSameKeysAndShapes(model.CheckpointTensors(TowerPlacement.Beside).Tensors, reference);

        var embedded = FixtureCatalog.Bundled("mgm-tiny-embedded-towers");
        using (var reference = Checkpoint.Open(Path.Combine(embedded, "model")))
            AssertSameKeysAndShapes(model.CheckpointTensors(TowerPlacement.Embedded).Tensors, reference);
    }

    [Fact]
    public void At_fixture_size_the_Gemma_decoder_and_the_tower_files_match_the_reference_keys_and_shapes()
    {
        var gemmaFolder = FixtureCatalog.Bundled("llm-gemma");
        var gemma = FixtureModel(ShapedModel.Mgm2B, gemmaFolder, FixtureCatalog.Bundled("clip-vit-tiny-openai-layout"));
        using (var reference = Checkpoint.Open(gemmaFolder)) AssertSameKeysAndShapes(Decoder(gemma.Decoder).Tensors, reference);

        // The fixtures' text towers are cut down: only the vision part and the open_clip trunk compare whole.
        using (var reference = Checkpoint.Open(FixtureCatalog.Bundled("clip-vit-tiny-openai-layout")))
            AssertSameKeysAndShapes(gemma.ClipFileTensors().Tensors, reference, k => k.StartsWith("vision_model.", StringComparison.Ordinal));
        using (var reference = Checkpoint.Open(Path.Combine(FixtureCatalog.Bundled("convnext-tiny"), "open_clip_pytorch_model.bin")))
            AssertSameKeysAndShapes(gemma.ConvNeXtFileTensors().Tensors, reference,
                k => k.StartsWith("visual.trunk.stem.", StringComparison.Ordinal) || k.StartsWith("visual.trunk.stages.", StringComparison.Ordinal));
    }
}
