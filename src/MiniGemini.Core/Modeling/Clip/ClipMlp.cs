using MiniGemini.Checkpoints;
using TorchSharp;
using TorchSharp.Modules;
using TorchSharp.Utils;
using static TorchSharp.torch;

namespace MiniGemini.Modeling;

/// <summary>HF <c>CLIPMLP</c>: fc1 → activation → fc2.</summary>
internal sealed class ClipMlp : nn.Module<Tensor, Tensor>
{
    [ComponentName(Name = "fc1")] readonly Linear _fc1;
    [ComponentName(Name = "fc2")] readonly Linear _fc2;
    readonly bool _quickGelu;

    /// <summary>quick_gelu's 1.702, rooted like the constants in <see cref="Scalars"/>.</summary>
    static readonly Scalar QuickGeluScale = 1.702.ToScalar();

    public ClipMlp(ClipVisionConfig config) : base(nameof(ClipMlp))
    {
        _quickGelu = config.HiddenAct switch
        {
            "quick_gelu" => true,
            "gelu" => false,
            _ => throw ModelLoadException.Config($"hidden_act '{config.HiddenAct}' is not supported (quick_gelu or gelu).", key: "hidden_act"),
        };
        _fc1 = LoadingLayers.Linear(config.HiddenSize, config.IntermediateSize);
        _fc2 = LoadingLayers.Linear(config.IntermediateSize, config.HiddenSize);
        RegisterComponents();
    }

    public override Tensor forward(Tensor x)
    {
        var h = _fc1.call(x); // [B, N, I]
        // OpenAI CLIP's quick_gelu is x·σ(1.702x), not an approximation of exact GELU that could be swapped for it.
        h = _quickGelu ? h * h.mul(QuickGeluScale).sigmoid_() : nn.functional.gelu(h);
        return _fc2.call(h); // [B, N, D]
    }
}
