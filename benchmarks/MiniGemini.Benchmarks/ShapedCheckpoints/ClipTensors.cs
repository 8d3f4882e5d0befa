namespace MiniGemini.Benchmarks.ShapedCheckpoints;

/// <summary>One HF CLIP transformer tower's shape (vision or text), as config.json's vision_config / text_config give it.</summary>
/// <param name="HiddenSize">Width.</param>
/// <param name="Layers">Encoder layers.</param>
/// <param name="Heads">Attention heads.</param>
/// <param name="IntermediateSize">MLP width.</param>
public sealed record ClipTowerShape(int HiddenSize, int Layers, int Heads, int IntermediateSize)
{
    /// <summary>Adds <c>encoder.layers.{i}.*</c> in HF's registration order (k, v, q, out projections, then norms and MLP).</summary>
    public void AddEncoder(TensorList tower)
    {
        for (int i = 0; i < Layers; i++)
        {
            tower.Under($"encoder.layers.{i}.")
                 .Linear("self_attn.k_proj", HiddenSize, HiddenSize)
                 .Linear("self_attn.v_proj", HiddenSize, HiddenSize)
                 .Linear("self_attn.q_proj", HiddenSize, HiddenSize)
                 .Linear("self_attn.out_proj", HiddenSize, HiddenSize)
                 .LayerNorm("layer_norm1", HiddenSize)
                 .Linear("mlp.fc1", HiddenSize, IntermediateSize)
                 .Linear("mlp.fc2", IntermediateSize, HiddenSize)
                 .LayerNorm("layer_norm2", HiddenSize);
        }
    }
}

/// <summary>
/// HF <c>CLIPModel</c> as <c>openai/clip-vit-large-patch14-336</c> stores it (spec §2.2-2.3): the vision tower under
/// <c>vision_model.</c>, the text tower under <c>text_model.</c>, <c>visual_projection</c>, <c>text_projection</c>
/// (no biases) and the scalar <c>logit_scale</c>. Files written by transformers before 4.31 also hold the
/// <c>position_ids</c> buffers (int64).
/// </summary>
/// <param name="Vision">The vision transformer.</param>
/// <param name="PatchSize">Patch side in pixels.</param>
/// <param name="ImageSize">Input side in pixels.</param>
/// <param name="Text">The text transformer.</param>
/// <param name="TextVocabSize">Text vocabulary.</param>
/// <param name="TextPositions">Text context length.</param>
/// <param name="ProjectionDim">Width of the joint embedding.</param>
public sealed record ClipShape(
    ClipTowerShape Vision, int PatchSize, int ImageSize,
    ClipTowerShape Text, int TextVocabSize, int TextPositions, int ProjectionDim)
{
    /// <summary>OpenAI CLIP ViT-L/14 at 336 px: vision 1024 wide, 24 layers, 16 heads, MLP 4096; text 768 wide, 12 layers, 12 heads.</summary>
    public static ClipShape VitLarge14At336 { get; } = new(
        new ClipTowerShape(1024, 24, 16, 4096), PatchSize: 14, ImageSize: 336,
        new ClipTowerShape(768, 12, 12, 3072), TextVocabSize: 49_408, TextPositions: 77, ProjectionDim: 768);

    /// <summary>The CLS token plus one position per patch (577 for ViT-L/14 at 336).</summary>
    public int VisionPositions => (ImageSize / PatchSize) * (ImageSize / PatchSize) + 1;

    /// <summary><c>CLIPVisionTransformer</c>'s tensors under <paramref name="tower"/>'s prefix (e.g. <c>vision_model.</c>).</summary>
    public void AddVisionTower(TensorList tower, bool positionIds)
    {
        int width = Vision.HiddenSize;
        tower.Add("embeddings.class_embedding", Init.Uniform, width)
             .Conv2d("embeddings.patch_embedding", 3, width, PatchSize, bias: false)
             .Embedding("embeddings.position_embedding", VisionPositions, width);
        if (positionIds) tower.Add("embeddings.position_ids", ElementType.Int64, Init.Positions, 1, VisionPositions);
        tower.LayerNorm("pre_layrnorm", width); // HF's spelling
        Vision.AddEncoder(tower);
        tower.LayerNorm("post_layernorm", width);
    }

    /// <summary><c>CLIPTextTransformer</c>'s tensors under <paramref name="tower"/>'s prefix (<c>text_model.</c>).</summary>
    public void AddTextTower(TensorList tower, bool positionIds)
    {
        int width = Text.HiddenSize;
        tower.Embedding("embeddings.token_embedding", TextVocabSize, width)
             .Embedding("embeddings.position_embedding", TextPositions, width);
        if (positionIds) tower.Add("embeddings.position_ids", ElementType.Int64, Init.Positions, 1, TextPositions);
        Text.AddEncoder(tower);
        tower.LayerNorm("final_layer_norm", width);
    }

    /// <summary>The whole <c>CLIPModel</c> state dict, as the released HF file holds it.</summary>
    public void AddFullModel(TensorList list)
    {
        AddTextTower(list.Under("text_model."), positionIds: true);
        AddVisionTower(list.Under("vision_model."), positionIds: true);
        list.Linear("visual_projection", Vision.HiddenSize, ProjectionDim, bias: false)
            .Linear("text_projection", Text.HiddenSize, ProjectionDim, bias: false)
            // CLIP's initial temperature: ln(1 / 0.07) = 2.6592.
            .Add("logit_scale", Init.Constant(Math.Log(1 / 0.07)));
    }
}
