using MiniGemini.Checkpoints;
using MiniGemini.Modeling;
using MiniGemini.Tests.Parity;
using Xunit;
using static TorchSharp.torch;

namespace MiniGemini.Tests.Checkpoints;

public sealed class ConfigTests
{
    static string Fixture(string path) => Path.Combine(FixtureCatalog.ReferenceRoot, path);

    [Theory]
    [InlineData("llm-llama-mha/config.json", LlmFamily.Llama, 6, 6, 16, 10000.0)]
    [InlineData("llm-llama-gqa/config.json", LlmFamily.Llama, 6, 2, 16, 5000000.0)]
    [InlineData("llm-gemma/config.json", LlmFamily.Gemma, 4, 1, 32, 10000.0)]
    [InlineData("llm-mixtral/config.json", LlmFamily.Mixtral, 6, 2, 16, 1000000.0)]
    [InlineData("mgm-tiny/model/config.json", LlmFamily.Llama, 6, 6, 16, 10000.0)]
    public void Fixture_llm_configs(string path, LlmFamily family, int heads, int kvHeads, int headDim, double theta)
    {
        var c = LlmConfig.Load(Fixture(path));
        Assert.Equal(family, c.Family);
        Assert.Equal(heads, c.NumAttentionHeads);
        Assert.Equal(kvHeads, c.NumKeyValueHeads);
        Assert.Equal(headDim, c.HeadDim);
        Assert.Equal(theta, c.RopeTheta);
        Assert.Equal(ScalarType.Float32, c.DType);
        Assert.Equal([2], c.EosTokenIds);
    }

    [Fact]
    public void Gemma_defaults_to_tanh_gelu_and_tied_head()
    {
        var c = LlmConfig.Load(Fixture("llm-gemma/config.json"));
        Assert.Equal("gelu_pytorch_tanh", c.HiddenAct);
        Assert.True(c.TieWordEmbeddings);
        var legacy = LlmConfig.Parse("""{"model_type":"gemma","vocab_size":10,"hidden_size":8,"intermediate_size":16,"num_hidden_layers":1,"num_attention_heads":2,"hidden_act":"gelu"}""");
        Assert.Equal("gelu_pytorch_tanh", legacy.HiddenAct);
        Assert.True(legacy.TieWordEmbeddings);
    }

    [Fact]
    public void Mixtral_fields()
    {
        var c = LlmConfig.Load(Fixture("llm-mixtral/config.json"));
        Assert.Equal(4, c.NumLocalExperts);
        Assert.Equal(2, c.NumExpertsPerToken);
        Assert.Null(c.SlidingWindow);
    }

    const string Base = "\"vocab_size\":10,\"hidden_size\":8,\"intermediate_size\":16,\"num_hidden_layers\":1,\"num_attention_heads\":2";

    [Theory]
    [InlineData("""{"model_type":"llama",BASE,"rope_theta":500000.0,"torch_dtype":"bfloat16"}""", 500000.0)]
    [InlineData("""{"model_type":"llama",BASE,"rope_parameters":{"rope_theta":500000.0,"rope_type":"default"},"dtype":"bfloat16"}""", 500000.0)]
    public void Both_transformers_spellings(string json, double theta)
    {
        var c = LlmConfig.Parse(json.Replace("BASE", Base));
        Assert.Equal(theta, c.RopeTheta);
        Assert.Equal(ScalarType.BFloat16, c.DType);
    }

    [Fact]
    public void Llama3_rope_scaling_in_either_place()
    {
        const string scaling = "{\"rope_type\":\"llama3\",\"factor\":8.0,\"low_freq_factor\":1.0,\"high_freq_factor\":4.0,\"original_max_position_embeddings\":8192";
        var v4 = LlmConfig.Parse("{\"model_type\":\"llama\"," + Base + ",\"rope_theta\":500000.0,\"rope_scaling\":" + scaling + "}}");
        var v5 = LlmConfig.Parse("{\"model_type\":\"llama\"," + Base + ",\"rope_parameters\":" + scaling + ",\"rope_theta\":500000.0}}");
        Assert.Equal(v4.RopeScaling, v5.RopeScaling);
        Assert.Equal(8.0, v4.RopeScaling!.Factor);
        Assert.Equal(500000.0, v5.RopeTheta);
    }

    [Theory]
    [InlineData("mgm", "MGMLlamaForCausalLM", LlmFamily.Llama)]
    [InlineData("mgm_gemma", "MGMGemmaForCausalLM", LlmFamily.Gemma)]
    [InlineData("mgm_mixtral", "MGMMixtralForCausalLM", LlmFamily.Mixtral)]
    [InlineData("mini_gemini", "MiniGeminiGemmaForCausalLM", LlmFamily.Gemma)]
    [InlineData("mini_gemini", "MiniGeminiMixtralForCausalLM", LlmFamily.Mixtral)]
    [InlineData("llava_llama", "LlavaLlamaUniForCausalLM", LlmFamily.Llama)]
    [InlineData("something_new", "MiniGeminiLlamaForCausalLM", LlmFamily.Llama)]
    public void Family_from_model_type_or_architectures(string modelType, string architecture, LlmFamily family)
    {
        var experts = family == LlmFamily.Mixtral ? ",\"num_local_experts\":8,\"num_experts_per_tok\":2" : "";
        var c = LlmConfig.Parse($"{{\"model_type\":\"{modelType}\",\"architectures\":[\"{architecture}\"],{Base}{experts}}}");
        Assert.Equal(family, c.Family);
    }

    [Fact]
    public void Unknown_model_type_is_a_clear_error()
    {
        var e = Assert.Throws<ModelLoadException>(() => LlmConfig.Parse($"{{\"model_type\":\"bert\",\"architectures\":[\"BertModel\"],{Base}}}", "cfg.json"));
        Assert.Contains("unknown model_type 'bert'", e.Message);
        Assert.Contains("cfg.json", e.Message);
    }

    [Theory]
    [InlineData("hidden_size")]
    [InlineData("vocab_size")]
    [InlineData("num_hidden_layers")]
    public void Missing_required_field_names_it(string field)
    {
        var json = "{\"model_type\":\"llama\"," + string.Join(",", Base.Split(',').Where(p => !p.Contains($"\"{field}\""))) + "}";
        var e = Assert.Throws<ModelLoadException>(() => LlmConfig.Parse(json, "cfg.json"));
        Assert.Equal(field, e.ConfigKey);
        Assert.Contains($"'{field}'", e.Message);
    }

    [Fact]
    public void Wrongly_typed_field_names_it()
    {
        var e = Assert.Throws<ModelLoadException>(() => LlmConfig.Parse("{\"model_type\":\"llama\"," + Base + ",\"num_key_value_heads\":\"two\"}"));
        Assert.Equal("num_key_value_heads", e.ConfigKey);
    }

    [Fact]
    public void Gqa_heads_must_divide()
    {
        var e = Assert.Throws<ModelLoadException>(() => LlmConfig.Parse("{\"model_type\":\"llama\"," + Base.Replace("\"num_attention_heads\":2", "\"num_attention_heads\":4") + ",\"num_key_value_heads\":3}"));
        Assert.Contains("num_key_value_heads", e.Message);
    }

    [Theory]
    [InlineData("clip-vit-tiny/config.json")]
    [InlineData("clip-vit-tiny-openai-layout/config.json")]
    public void Clip_config_flat_or_nested(string path)
    {
        var c = ClipVisionConfig.Load(Fixture(path));
        Assert.Equal(64, c.HiddenSize);
        Assert.Equal(3, c.NumHiddenLayers);
        Assert.Equal(4, c.NumAttentionHeads);
        Assert.Equal(56, c.ImageSize);
        Assert.Equal(14, c.PatchSize);
        Assert.Equal(4, c.PatchesPerSide);
        Assert.Equal("quick_gelu", c.HiddenAct);
    }

    [Fact]
    public void Clip_nested_config_takes_transformers_defaults_for_absent_fields()
    {
        var c = ClipVisionConfig.Parse("""{"model_type":"clip","vision_config":{"hidden_size":1024,"intermediate_size":4096,"num_hidden_layers":24,"num_attention_heads":16,"image_size":336,"patch_size":14}}""");
        Assert.Equal("quick_gelu", c.HiddenAct);
        Assert.Equal(1e-5, c.LayerNormEps);
        Assert.Equal(24, c.PatchesPerSide);
    }

    [Fact]
    public void Clip_config_of_another_model_is_refused()
    {
        Assert.Throws<ModelLoadException>(() => ClipVisionConfig.Load(Fixture("llm-llama-mha/config.json")));
    }

    [Fact]
    public void Mgm_config_fields()
    {
        var normal = MgmConfig.Load(Fixture("mgm-tiny/model/config.json"));
        Assert.Equal(64, normal.MmHiddenSize);
        Assert.Equal(160, normal.MmHiddenSizeAux);
        Assert.Equal("mlp2x_gelu", normal.ProjectorType);
        Assert.Equal(-2, normal.VisionSelectLayer);
        Assert.Equal("../clip-vit", normal.VisionTower);
        Assert.Equal("../openclip-convnext", normal.VisionTowerAux);
        Assert.Equal(1, normal.ImageGrid);
        Assert.False(normal.ImageGlobal);
        Assert.Equal(64, normal.ImageSizeAux);
        var hd = MgmConfig.Load(Fixture("mgm-tiny-hd/model/config.json"));
        Assert.Equal(2, hd.ImageGrid);
        Assert.True(hd.ImageGlobal);
        Assert.Equal(128, hd.ImageSizeAux);
    }

    [Theory]
    [InlineData("image_size_aux", "262144")]
    [InlineData("image_size_aux", "0")]
    [InlineData("image_grid", "0")]
    [InlineData("image_grid", "1000")]
    public void Mgm_image_sizes_out_of_range_are_refused_naming_the_key(string key, string value)
    {
        var e = Assert.Throws<ModelLoadException>(() => MgmConfig.Parse("{\"model_type\":\"mgm\",\"mm_hidden_size\":8," + Base + $",\"{key}\":{value}}}", "cfg.json"));
        Assert.Equal(key, e.ConfigKey);
        Assert.Contains(value, e.Message);
        Assert.Contains("cfg.json", e.Message);
    }

    [Fact]
    public void Mgm_config_requires_mm_hidden_size()
    {
        var e = Assert.Throws<ModelLoadException>(() => MgmConfig.Parse("{\"model_type\":\"mgm\"," + Base + "}"));
        Assert.Equal("mm_hidden_size", e.ConfigKey);
    }

    [Fact]
    public void OpenClip_and_preprocessor_configs()
    {
        var oc = OpenClipConfig.Load(Fixture("convnext-tiny/open_clip_config.json"));
        Assert.Equal([1, 1, 2, 1], oc.Depths);
        Assert.Equal([16, 32, 48, 64], oc.Dims);
        Assert.Equal(PreprocessorConfig.ClipMean, oc.Mean);
        var pp = PreprocessorConfig.Load(Fixture("clip-vit-tiny-openai-layout/preprocessor_config.json"));
        Assert.Equal(56, pp.Size);
        Assert.Equal(56, pp.CropSize);
        Assert.Equal(3, pp.Resample);
        Assert.Equal(PreprocessorConfig.ClipStd, pp.ImageStd);
    }

    [Fact]
    public void Generation_config_accepts_several_eos_ids()
    {
        var path = Path.Combine(Path.GetTempPath(), $"gen-{Guid.NewGuid():N}.json");
        File.WriteAllText(path, """{"eos_token_id":[128001,128009],"temperature":0.6,"top_p":0.9,"do_sample":true}""");
        try
        {
            var g = GenerationConfig.Load(path);
            Assert.Equal([128001, 128009], g.EosTokenIds);
            Assert.Equal(0.6, g.Temperature);
            Assert.True(g.DoSample);
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void A_missing_config_file_is_a_typed_error_naming_it()
    {
        var path = Path.Combine(Path.GetTempPath(), $"no-such-config-{Guid.NewGuid():N}", "config.json");
        var e = Assert.Throws<ModelLoadException>(() => LlmConfig.Load(path));
        Assert.Equal(path, e.FilePath);
        Assert.Contains(path, e.Message);
        Assert.Contains("not found", e.Message);
    }

    [Fact]
    public void Malformed_json_is_a_typed_error_naming_the_file()
    {
        var path = Path.Combine(Path.GetTempPath(), $"bad-{Guid.NewGuid():N}.json");
        File.WriteAllText(path, "{\"model_type\": ");
        try
        {
            var e = Assert.Throws<ModelLoadException>(() => LlmConfig.Load(path));
            Assert.Equal(path, e.FilePath);
        }
        finally
        {
            File.Delete(path);
        }
    }
}
