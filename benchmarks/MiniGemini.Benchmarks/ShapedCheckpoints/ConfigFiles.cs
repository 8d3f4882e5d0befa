using System.Diagnostics;
using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace MiniGemini.Benchmarks.ShapedCheckpoints;

/// <summary>
/// The JSON files that come with the checkpoints, with the values of the released ones: the MGM config.json (the base
/// LLM's fields as its own config.json has them, plus MGM's <c>mm_*</c> and image fields, spec §8.1),
/// generation_config.json, the CLIP folder's config.json and preprocessor_config.json, and open_clip_config.json.
/// Keys are sorted, as transformers writes them.
/// </summary>
public static class ConfigFiles
{
    static readonly JsonSerializerOptions Indented = new()
    {
        WriteIndented = true,
        // Token strings such as "<bos>" are written as they are, not as \u003C escapes.
        Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
    };

    /// <summary>Writes <paramref name="json"/> to <paramref name="path"/> (two-space indent, trailing newline).</summary>
    public static WrittenFile Write(string path, JsonNode json)
    {
        var clock = Stopwatch.StartNew();
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
        File.WriteAllText(path, json.ToJsonString(Indented) + "\n");
        return new WrittenFile(path, new FileInfo(path).Length, 0, clock.Elapsed.TotalSeconds);
    }

    /// <summary>
    /// A float written as Python's json module writes it (<c>0.0</c>, <c>10000.0</c>, <c>1e-06</c>), where .NET would
    /// write <c>0</c>, <c>10000</c>, <c>1E-06</c>: the same numbers, but files that read like the released ones
    /// (for the magnitudes configs hold; Python also switches to an exponent from 1e16, which this does not).
    /// </summary>
    public static JsonNode Float(double value)
    {
        var text = value.ToString("R", System.Globalization.CultureInfo.InvariantCulture);
        int e = text.IndexOf('E');
        if (e >= 0)
        {
            int exponent = int.Parse(text[(e + 1)..], System.Globalization.CultureInfo.InvariantCulture);
            text = text[..e] + "e" + (exponent < 0 ? "-" : "+") + Math.Abs(exponent).ToString("00", System.Globalization.CultureInfo.InvariantCulture);
        }
        else if (!text.Contains('.')) text += ".0";
        return JsonNode.Parse(text)!;
    }

    /// <summary>An object with its keys in ordinal order.</summary>
    internal static JsonObject Sorted(IEnumerable<KeyValuePair<string, JsonNode?>> fields)
    {
        var json = new JsonObject();
        foreach (var (key, value) in fields.OrderBy(f => f.Key, StringComparer.Ordinal)) json[key] = value;
        return json;
    }

    /// <summary>The MGM checkpoint's config.json.</summary>
    public static JsonObject MgmConfig(ShapedModel m)
    {
        var d = m.Decoder;
        var (bos, eos, pad) = m.SpecialIds;
        bool gemma = m.Vocabulary == VocabularyLayout.Gemma;
        var fields = new Dictionary<string, JsonNode?>
        {
            ["architectures"] = new JsonArray(m.Architecture),
            ["attention_bias"] = false,
            ["attention_dropout"] = Float(0.0),
            ["bos_token_id"] = bos,
            ["eos_token_id"] = eos,
            ["pad_token_id"] = pad,
            ["hidden_act"] = m.HiddenAct,
            ["hidden_size"] = d.HiddenSize,
            ["initializer_range"] = Float(0.02),
            ["intermediate_size"] = d.IntermediateSize,
            ["max_position_embeddings"] = m.MaxPositionEmbeddings,
            ["model_type"] = m.ModelType,
            ["num_attention_heads"] = d.Heads,
            ["num_hidden_layers"] = d.Layers,
            ["num_key_value_heads"] = d.KvHeads,
            ["rms_norm_eps"] = Float(m.RmsNormEps),
            ["rope_scaling"] = null,
            ["rope_theta"] = Float(10000.0),
            ["torch_dtype"] = "bfloat16",
            ["transformers_version"] = gemma ? "4.38.2" : "4.36.2",
            ["use_cache"] = true,
            ["vocab_size"] = d.VocabSize,
            // MGM's fields (spec §8.1), the same in every release but for the image size, grid and global view.
            ["mm_vision_tower"] = ShapedModel.VisionTowerPath,
            ["mm_vision_tower_aux"] = ShapedModel.VisionTowerAuxPath,
            ["mm_hidden_size"] = m.Clip.Vision.HiddenSize,
            ["mm_hidden_size_aux"] = m.ConvNeXt.Trunk.FusedChannels,
            ["mm_projector_type"] = "mlp2x_gelu",
            ["mm_vision_select_layer"] = -2,
            ["mm_vision_select_feature"] = "patch",
            ["mm_use_im_start_end"] = false,
            ["mm_use_im_patch_token"] = false,
            ["use_mm_proj"] = true,
            ["image_aspect_ratio"] = "pad",
            ["image_grid_pinpoints"] = null,
            ["image_size_aux"] = m.ImageSizeAux,
            ["image_grid"] = m.ImageGrid,
            ["image_global"] = m.ImageGlobal,
            ["optimize_vision_tower"] = false,
            ["optimize_vision_tower_aux"] = false,
            ["tokenizer_model_max_length"] = m.TokenizerModelMaxLength,
            ["tokenizer_padding_side"] = "right",
        };
        if (gemma) fields["head_dim"] = d.HeadDim;                // Gemma's head width is not hidden / heads
        else
        {
            fields["pretraining_tp"] = 1;
            fields["tie_word_embeddings"] = false;
        }
        return Sorted(fields);
    }

    /// <summary>generation_config.json: the special ids (the LLM's stop id is the tokenizer's EOS).</summary>
    public static JsonObject GenerationConfig(ShapedModel m)
    {
        var (bos, eos, pad) = m.SpecialIds;
        return Sorted(new Dictionary<string, JsonNode?>
        {
            ["_from_model_config"] = true,
            ["bos_token_id"] = bos,
            ["eos_token_id"] = eos,
            ["pad_token_id"] = pad,
            ["transformers_version"] = m.Vocabulary == VocabularyLayout.Gemma ? "4.38.2" : "4.36.2",
        });
    }

    /// <summary>The CLIP folder's config.json: a full <c>CLIPConfig</c> with text_config and vision_config.</summary>
    public static JsonObject ClipConfig(ClipShape c) => Sorted(new Dictionary<string, JsonNode?>
    {
        ["architectures"] = new JsonArray("CLIPModel"),
        ["initializer_factor"] = Float(1.0),
        ["logit_scale_init_value"] = Float(2.6592),
        ["model_type"] = "clip",
        ["projection_dim"] = c.ProjectionDim,
        ["torch_dtype"] = "float32",
        ["transformers_version"] = "4.21.3",
        ["text_config"] = Sorted(new Dictionary<string, JsonNode?>
        {
            ["attention_dropout"] = Float(0.0),
            ["bos_token_id"] = 0,
            ["dropout"] = Float(0.0),
            ["eos_token_id"] = 2,
            ["hidden_act"] = "quick_gelu",
            ["hidden_size"] = c.Text.HiddenSize,
            ["initializer_factor"] = Float(1.0),
            ["initializer_range"] = Float(0.02),
            ["intermediate_size"] = c.Text.IntermediateSize,
            ["layer_norm_eps"] = Float(1e-5),
            ["max_position_embeddings"] = c.TextPositions,
            ["model_type"] = "clip_text_model",
            ["num_attention_heads"] = c.Text.Heads,
            ["num_hidden_layers"] = c.Text.Layers,
            ["pad_token_id"] = 1,
            ["projection_dim"] = c.ProjectionDim,
            ["vocab_size"] = c.TextVocabSize,
        }),
        ["vision_config"] = Sorted(new Dictionary<string, JsonNode?>
        {
            ["attention_dropout"] = Float(0.0),
            ["dropout"] = Float(0.0),
            ["hidden_act"] = "quick_gelu",
            ["hidden_size"] = c.Vision.HiddenSize,
            ["image_size"] = c.ImageSize,
            ["initializer_factor"] = Float(1.0),
            ["initializer_range"] = Float(0.02),
            ["intermediate_size"] = c.Vision.IntermediateSize,
            ["layer_norm_eps"] = Float(1e-5),
            ["model_type"] = "clip_vision_model",
            ["num_attention_heads"] = c.Vision.Heads,
            ["num_channels"] = 3,
            ["num_hidden_layers"] = c.Vision.Layers,
            ["patch_size"] = c.PatchSize,
            ["projection_dim"] = c.ProjectionDim,
        }),
    });

    /// <summary>OpenAI CLIP's normalisation (RGB), which the ConvNeXt shares.</summary>
    static JsonArray Mean() => new(Float(0.48145466), Float(0.4578275), Float(0.40821073));

    static JsonArray Std() => new(Float(0.26862954), Float(0.26130258), Float(0.27577711));

    /// <summary>The CLIP folder's preprocessor_config.json (bicubic resize and centre crop to the input side, CLIP mean/std).</summary>
    public static JsonObject ClipPreprocessor(ClipShape c) => Sorted(new Dictionary<string, JsonNode?>
    {
        ["crop_size"] = c.ImageSize,
        ["do_center_crop"] = true,
        ["do_normalize"] = true,
        ["do_resize"] = true,
        ["feature_extractor_type"] = "CLIPFeatureExtractor",
        ["image_mean"] = Mean(),
        ["image_std"] = Std(),
        ["resample"] = 3,
        ["size"] = c.ImageSize,
    });

    /// <summary>open_clip_config.json of convnext_large_d_320 (MGM reads it to build the model before loading the weights).</summary>
    public static JsonObject OpenClipConfig(OpenClipConvNeXtShape s) => new()
    {
        ["model_cfg"] = new JsonObject
        {
            ["embed_dim"] = s.EmbedDim,
            ["vision_cfg"] = new JsonObject
            {
                ["timm_model_name"] = "convnext_large",
                ["timm_model_pretrained"] = false,
                ["timm_pool"] = "",
                ["timm_proj"] = "mlp",
                ["timm_drop"] = Float(0.0),
                ["timm_drop_path"] = Float(0.1),
                ["image_size"] = 320,
            },
            ["text_cfg"] = new JsonObject
            {
                ["context_length"] = s.Text.ContextLength,
                ["vocab_size"] = s.Text.VocabSize,
                ["width"] = s.Text.Width,
                ["heads"] = OpenClipConvNeXtShape.TextHeads,
                ["layers"] = s.Text.Layers,
            },
        },
        ["preprocess_cfg"] = new JsonObject { ["mean"] = Mean(), ["std"] = Std() },
    };
}
