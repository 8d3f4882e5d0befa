using MiniGemini.Checkpoints;
using MiniGemini.Modeling;
using Xunit;

namespace MiniGemini.Tests.Checkpoints;

/// <summary>Absurd sizes in an LLM config are refused at parse time, naming the key, before any allocation.</summary>
public sealed class ConfigBoundsTests
{
    const string Base = "\"model_type\":\"llama\",\"vocab_size\":10,\"hidden_size\":8,\"intermediate_size\":16,\"num_hidden_layers\":1,\"num_attention_heads\":2";

    [Theory]
    [InlineData("max_position_embeddings", "-1")]
    [InlineData("max_position_embeddings", "2000000000")]
    [InlineData("rms_norm_eps", "-1")]
    [InlineData("rms_norm_eps", "0")]
    [InlineData("rope_theta", "-10000")]
    [InlineData("num_hidden_layers", "1000000000")]
    [InlineData("hidden_size", "2000000000")]
    [InlineData("vocab_size", "0")]
    public void An_out_of_range_value_is_refused_naming_its_key(string key, string value)
    {
        var json = "{" + Base.Replace($"\"{key}\":", $"\"_{key}\":") + $",\"{key}\":{value}}}";
        var e = Assert.Throws<ModelLoadException>(() => LlmConfig.Parse(json));
        Assert.Contains(key, e.Message);
    }

    [Theory]
    [InlineData("0")]
    [InlineData("1000000000000")]
    public void A_hidden_size_of_zero_or_a_trillion_is_refused_naming_the_key(string value)
    {
        var json = "{" + Base.Replace("\"hidden_size\":8", $"\"hidden_size\":{value}") + "}";
        var e = Assert.Throws<ModelLoadException>(() => LlmConfig.Parse(json, "cfg.json"));
        Assert.Equal("hidden_size", e.ConfigKey);
        Assert.Contains("hidden_size", e.Message);
        Assert.Contains(value, e.Message);
        Assert.Contains("cfg.json", e.Message);
    }

    [Theory]
    [InlineData("torch_dtype", "int8")]
    [InlineData("dtype", "float8_e4m3fn")]
    public void A_storage_dtype_outside_the_float_types_is_refused_naming_the_key(string key, string value)
    {
        var json = "{" + Base + $",\"{key}\":\"{value}\"" + "}";
        var e = Assert.Throws<ModelLoadException>(() => LlmConfig.Parse(json, "cfg.json"));
        Assert.Equal(key, e.ConfigKey);
        Assert.Contains(value, e.Message);
    }

    [Fact]
    public void Sizes_of_released_models_are_accepted()
    {
        var c = LlmConfig.Parse("{\"model_type\":\"llama\",\"vocab_size\":128256,\"hidden_size\":16384,\"intermediate_size\":53248," +
                                "\"num_hidden_layers\":126,\"num_attention_heads\":128,\"num_key_value_heads\":8,\"max_position_embeddings\":131072," +
                                "\"rms_norm_eps\":1e-5,\"rope_theta\":500000.0}");
        Assert.Equal(126, c.NumHiddenLayers);
    }
}
