using TorchSharp;
using static TorchSharp.torch;
using static TorchSharp.torch.nn.functional;

namespace MiniGemini.Modeling;

/// <summary>
/// MGM's fusion of the four ConvNeXt stages into one high-resolution map: stages 1–3 are upsampled bilinearly
/// (align_corners = false, computed in at least float32 as MGM does) to stage 0's size and concatenated in stage order.
/// The stages are channels-last, as timm's are (the blocks run NHWC and permute back), and are upsampled as they lie:
/// libtorch's channels-last kernel, the reference's, differs by an ulp from its NCHW one in about half the values. The
/// map keeps that memory format; patch info mining copies it once where it needs NCHW.
/// </summary>
internal static class MultiStageFusion
{
    /// <summary>Stages <c>[B, C_i, H/2^(i+2), W/2^(i+2)]</c> → <c>[B, ΣC_i, H/4, W/4]</c> in the dtype of stage 0.</summary>
    public static Tensor Fuse(IReadOnlyList<Tensor> stages)
    {
        if (stages.Count == 0) throw new ArgumentException("At least one stage is needed.", nameof(stages));
        using var scope = NewDisposeScope();
        var first = stages[0];
        var size = new[] { first.shape[2], first.shape[3] };
        var parts = new List<Tensor> { first };
        foreach (var stage in stages.Skip(1))
            parts.Add(interpolate(TensorHelpers.AtLeastFloat32(stage), size, mode: InterpolationMode.Bilinear, align_corners: false).to(first.dtype));
        return cat(parts, dim: 1).MoveToOuterDisposeScope(); // [B, ΣC, H/4, W/4]
    }
}
