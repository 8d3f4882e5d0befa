namespace MiniGemini.Benchmarks.ShapedCheckpoints;

/// <summary>
/// MGM's own modules (spec §4.1, §4.4), as stored under <c>model.</c> in its checkpoints: the <c>mlp2x_gelu</c>
/// projector <c>mm_projector.{0,2}</c> (Linear D→H, GELU, Linear H→H) and the three patch-info-mining projections
/// <c>vlm_uni_{query,aux,val}_projector</c>, each <c>Sequential(LayerNorm, Linear)</c>.
/// </summary>
/// <param name="ClipWidth">D = mm_hidden_size (1024: CLIP ViT-L).</param>
/// <param name="AuxWidth">Da = mm_hidden_size_aux (2880: ConvNeXt-L's fused stages).</param>
/// <param name="LlmWidth">H = the LLM's hidden_size.</param>
public sealed record MultimodalShape(int ClipWidth, int AuxWidth, int LlmWidth)
{
    /// <summary>Adds the projector (registered first, by <c>MGMMetaModel.__init__</c>).</summary>
    public void AddProjector(TensorList list)
    {
        list.Under("model.mm_projector.")
            .Linear("0", ClipWidth, LlmWidth)
            .Linear("2", LlmWidth, LlmWidth);
    }

    /// <summary>Adds the mining projections (registered later, by <c>initialize_uni_modules</c>).</summary>
    public void AddMining(TensorList list)
    {
        var model = list.Under("model.");
        model.Under("vlm_uni_query_projector.").LayerNorm("0", ClipWidth).Linear("1", ClipWidth, ClipWidth);
        model.Under("vlm_uni_aux_projector.").LayerNorm("0", AuxWidth).Linear("1", AuxWidth, ClipWidth);
        model.Under("vlm_uni_val_projector.").LayerNorm("0", AuxWidth).Linear("1", AuxWidth, ClipWidth);
    }
}
