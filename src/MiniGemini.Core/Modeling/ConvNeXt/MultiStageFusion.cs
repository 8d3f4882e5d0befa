using TorchSharp;
using static TorchSharp.torch;
using static TorchSharp.torch.nn.functional;

namespace MiniGemini.Modeling;

/// <summary>
/// MGM's fusion of the four ConvNeXt stages into one high-resolution map: stages 1–3 are upsampled bilinearly
/// (align_corners = false, computed in at least float32 as MGM does) to stage 0's size and concatenated in stage order.
/// The stages are channels-last, as timm's are (the blocks run NHWC and permute back), and are upsampled as they lie:
/// libtorch's channels-last kernel, the reference's, differs by an ulp from its NCHW one in about half the values. The
/// map is NCHW, as patch info mining reads it.
/// </summary>
internal static class MultiStageFusion
{
    /// <summary>Float32 bytes of upsampled channels made at a time (about): reused memory instead of new pages.</summary>
    const long ChunkBytes = 16L << 20;

    /// <summary>
    /// Channels upsampled at a time are a multiple of this: libtorch's channels-last kernel computes channels in vectors
    /// of up to 16 and the rest one by one, slightly differently, so chunks on whole vectors give the values of the
    /// whole stage at once, bit for bit.
    /// </summary>
    const long ChannelGranule = 32;

    /// <summary>Stages <c>[B, C_i, H/2^(i+2), W/2^(i+2)]</c> → <c>[B, ΣC_i, H/4, W/4]</c> in the dtype of stage 0, NCHW.</summary>
    public static Tensor Fuse(IReadOnlyList<Tensor> stages, long chunkBytes = ChunkBytes)
    {
        if (stages.Count == 0) throw new ArgumentException("At least one stage is needed.", nameof(stages));
        using var scope = NewDisposeScope();
        var first = stages[0];
        var size = new[] { first.shape[2], first.shape[3] };
        var fused = empty([first.shape[0], stages.Sum(s => s.shape[1]), size[0], size[1]], first.dtype, first.device); // [B, ΣC, H/4, W/4]
        fused.narrow(1, 0, first.shape[1]).copy_(first);
        // The ConvNeXt's channels-last stages are upsampled a few channels at a time: neither a float32 copy of an
        // upsampled stage (up to 0.9 GB for MGM-7B-HD) nor its rounded copy is ever whole, and each chunk is turned from
        // NHWC to NCHW while it is small (the whole map turned at once, element by element, took mining 6–10 s at
        // MGM-7B-HD's size). Other stages are upsampled whole, as chunks would change which kernel libtorch picks.
        bool channelsLast = stages.All(IsChannelsLast);
        long perChannel = first.shape[0] * size[0] * size[1] * sizeof(float);
        long perChunk = channelsLast ? Math.Max(ChannelGranule, chunkBytes / perChannel / ChannelGranule * ChannelGranule) : long.MaxValue;
        long channel = first.shape[1];
        foreach (var stage in stages.Skip(1))
        {
            var source = TensorHelpers.AtLeastFloat32(stage);                                    // [B, C_i, h, w]
            for (long c = 0; c < stage.shape[1]; c += perChunk)
            {
                long n = Math.Min(perChunk, stage.shape[1] - c);
                using var chunk = channelsLast
                    ? source.permute(0, 2, 3, 1).narrow(3, c, n).contiguous().permute(0, 3, 1, 2)  // [B, n, h, w], NHWC in memory
                    : source.narrow(1, c, n);
                using var part = interpolate(chunk, size, mode: InterpolationMode.Bilinear, align_corners: false);
                fused.narrow(1, channel + c, n).copy_(part); // rounded to the map's dtype as it is copied, as .to() rounds
            }
            channel += stage.shape[1];
        }
        return fused.MoveToOuterDisposeScope();
    }

    /// <summary>Whether <c>[B, C, H, W]</c> lies in memory as a contiguous <c>[B, H, W, C]</c>.</summary>
    static bool IsChannelsLast(Tensor stage)
    {
        using var nhwc = stage.permute(0, 2, 3, 1);
        return nhwc.is_contiguous();
    }
}
