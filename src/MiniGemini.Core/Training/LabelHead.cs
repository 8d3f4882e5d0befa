using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace MiniGemini.Training;

/// <summary>
/// The head a label stage trains beside the model (kept in its checkpoint, not in the saved model): a linear map to the
/// classes of every attribute and, for HR crops with a focus box, the query of an attention pooling of the crop's map
/// that reads the map as patch info mining does (softmax over the positions of the LayerNorm-standardised features).
/// </summary>
internal sealed class LabelHead : nn.Module
{
    readonly Linear classifier;
    readonly Parameter query;

    public LabelHead(long width, long classes) : base(nameof(LabelHead))
    {
        classifier = nn.Linear(width, classes);
        // Zero: the pooling starts as the crop's mean, and the focus term's first gradient points at the box.
        query = nn.Parameter(zeros(width));
        RegisterComponents();
    }

    /// <summary>Features <c>[…, W]</c> → logits of every attribute's classes <c>[…, ΣC]</c>.</summary>
    public Tensor Classify(Tensor features) => classifier.call(features);

    /// <summary>
    /// A fused HR map <c>[B, Da, h, w]</c> → the attention scores over its positions <c>[B, 1, h·w]</c> (one region of
    /// h×w features, row-major, as mining's scores are laid out) and the attended standardised features <c>[B, 1, Da]</c>.
    /// </summary>
    public (Tensor Pooled, Tensor Scores) Attend(Tensor map)
    {
        using var scope = NewDisposeScope();
        long batch = map.shape[0], channels = map.shape[1];
        var standardised = nn.functional.layer_norm(map.permute(0, 2, 3, 1), [channels]).reshape(batch, -1, channels); // [B, h·w, Da]
        using var scale = Math.Sqrt(channels).ToScalar();
        var scores = standardised.matmul(query).div(scale).unsqueeze(1);                       // [B, 1, h·w]
        var pooled = scores.softmax(-1).matmul(standardised);                                  // [B, 1, Da]
        return (pooled.MoveToOuterDisposeScope(), scores.MoveToOuterDisposeScope());
    }
}
