using MiniGemini.Checkpoints;
using TorchSharp;
using TorchSharp.Modules;
using TorchSharp.Utils;
using static TorchSharp.torch;

namespace MiniGemini.Modeling;

/// <summary>
/// HF <c>CLIPVisionEmbeddings</c>: non-overlapping patches (a strided conv without bias), a learned class token in
/// front, and a learned absolute position embedding per token.
/// </summary>
internal sealed class ClipVisionEmbeddings : nn.Module<Tensor, Tensor>
{
    [ComponentName(Name = "class_embedding")] readonly Parameter _classEmbedding;
    [ComponentName(Name = "patch_embedding")] readonly Conv2d _patchEmbedding;
    [ComponentName(Name = "position_embedding")] readonly Embedding _positionEmbedding;

    public ClipVisionEmbeddings(ClipVisionConfig config) : base(nameof(ClipVisionEmbeddings))
    {
        long positions = (long)config.PatchesPerSide * config.PatchesPerSide + 1;
        _classEmbedding = new Parameter(randn(config.HiddenSize));
        _patchEmbedding = nn.Conv2d(config.NumChannels, config.HiddenSize, config.PatchSize, stride: config.PatchSize, bias: false);
        _positionEmbedding = nn.Embedding(positions, config.HiddenSize);
        RegisterComponents();
    }

    public override Tensor forward(Tensor pixels)
    {
        long batch = pixels.shape[0];
        var patches = _patchEmbedding.call(pixels.to(_patchEmbedding.weight!.dtype)); // [B, D, h, w]
        patches = patches.flatten(2).transpose(1, 2);                                    // [B, h·w, D], row-major patches
        var cls = _classEmbedding.expand(batch, 1, -1);                                   // [B, 1, D]
        // HF looks up position_ids = 0..N−1, i.e. the whole table in order. Reading the table directly needs no index
        // buffer, which TorchSharp's Module.to() would leave behind on the CPU (it skips non-persistent buffers).
        return cat([cls, patches], dim: 1).Plus(_positionEmbedding.weight!);            // [B, 1 + h·w, D]
    }
}
