using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace MiniGemini.Llm.Mixtral;

/// <summary>
/// One Mixtral expert: <c>w2(act(w1·x) * w3·x)</c> (w1 = gate, w3 = up, w2 = down); w1 and w3 run as one matmul
/// (<see cref="FusedLinear"/>; the checkpoint keys are unchanged).
/// </summary>
internal sealed class MixtralExpert : nn.Module<Tensor, Tensor>
{
    readonly FusedLinear _gateUp;
    readonly Linear w1, w2, w3;
    readonly Func<Tensor, Tensor> _act;

    public MixtralExpert(int hidden, int intermediate, Func<Tensor, Tensor> act, Device device, ScalarType dtype) : base(nameof(MixtralExpert))
    {
        _gateUp = new FusedLinear(hidden, [intermediate, intermediate], bias: false, device, dtype);
        (w1, w3) = (_gateUp.Parts[0], _gateUp.Parts[1]);
        w2 = Layers.Linear(intermediate, hidden, bias: false, device, dtype);
        _act = act;
        RegisterComponents();
    }

    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        var gateUp = _gateUp.Forward(x).chunk(2, -1);      // w1·x, w3·x: [.., intermediate] each
        return w2.call(_act(gateUp[0]).mul_(gateUp[1])).MoveToOuterDisposeScope();
    }

    // Module.to moved w1 and w3 one by one; put them back into one tensor.
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
