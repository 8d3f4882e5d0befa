using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace MiniGemini.Llm;

/// <summary>
/// The gated feed-forward of Llama (SwiGLU) and Gemma (GeGLU): <c>down_proj(act(gate_proj(x)) * up_proj(x))</c>.
/// gate and up run as one matmul (<see cref="FusedLinear"/>; the checkpoint keys stay <c>gate_proj</c>, <c>up_proj</c>).
/// </summary>
internal sealed class GatedMlp : nn.Module<Tensor, Tensor>
{
    readonly FusedLinear _gateUp;
    readonly Linear gate_proj, up_proj, down_proj;
    readonly Func<Tensor, Tensor> _act;

    public GatedMlp(long hidden, long intermediate, bool bias, Func<Tensor, Tensor> act, Device device, ScalarType dtype)
        : base(nameof(GatedMlp))
    {
        _gateUp = new FusedLinear(hidden, [intermediate, intermediate], bias, device, dtype);
        (gate_proj, up_proj) = (_gateUp.Parts[0], _gateUp.Parts[1]);
        down_proj = Layers.Linear(intermediate, hidden, bias, device, dtype);
        _act = act;
        RegisterComponents();
    }

    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        var gateUp = _gateUp.Forward(x).chunk(2, -1);      // gate, up: [.., intermediate] each
        var gated = _act(gateUp[0]).mul_(gateUp[1]);
        return down_proj.call(gated).MoveToOuterDisposeScope();
    }

    // Module.to moved gate and up one by one; put them back into one tensor.
    protected override void _toEpilog(ScalarType? dtype, Device? device, bool non_blocking)
    {
        base._toEpilog(dtype, device, non_blocking);
        _gateUp.Rejoin();
    }

    protected override void Dispose(bool disposing)
    {
        base.Dispose(disposing);
        if (disposing) _gateUp.Dispose();
    }
}
