using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace MiniGemini.Llm;

/// <summary>
/// The gated feed-forward of Llama (SwiGLU) and Gemma (GeGLU): <c>down_proj(act(gate_proj(x)) * up_proj(x))</c>.
/// </summary>
internal sealed class GatedMlp : nn.Module<Tensor, Tensor>
{
    readonly Linear gate_proj, up_proj, down_proj;
    readonly Func<Tensor, Tensor> _act;

    public GatedMlp(long hidden, long intermediate, bool bias, Func<Tensor, Tensor> act, Device device, ScalarType dtype)
        : base(nameof(GatedMlp))
    {
        gate_proj = Layers.Linear(hidden, intermediate, bias, device, dtype);
        up_proj = Layers.Linear(hidden, intermediate, bias, device, dtype);
        down_proj = Layers.Linear(intermediate, hidden, bias, device, dtype);
        _act = act;
        RegisterComponents();
    }

    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        var gated = _act(gate_proj.call(x)).mul_(up_proj.call(x)); // [.., intermediate]
        return down_proj.call(gated).MoveToOuterDisposeScope();
    }
}
