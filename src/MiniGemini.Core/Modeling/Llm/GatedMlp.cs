using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace MiniGemini.Modeling;

/// <summary>
/// The gated feed-forward of Llama (SwiGLU), Gemma (GeGLU) and each Mixtral expert: <c>down(act(gate(x)) * up(x))</c>.
/// gate and up run as one matmul (<see cref="FusedLinear"/>). The projections keep their checkpoint names:
/// <see cref="MlpNames"/> in a dense MLP, <see cref="ExpertNames"/> in a Mixtral expert.
/// </summary>
internal sealed class GatedMlp : nn.Module<Tensor, Tensor>
{
    /// <summary>A dense MLP's projections (Llama, Gemma).</summary>
    public static readonly (string Gate, string Up, string Down) MlpNames = ("gate_proj", "up_proj", "down_proj");

    /// <summary>A Mixtral expert's projections: w1 = gate, w3 = up, w2 = down.</summary>
    public static readonly (string Gate, string Up, string Down) ExpertNames = ("w1", "w3", "w2");

    readonly FusedLinear _gateUp;
    readonly Linear _down;
    readonly Func<Tensor, Tensor> _act;

    public GatedMlp(long hidden, long intermediate, bool bias, Func<Tensor, Tensor> act, (string Gate, string Up, string Down) names,
        Device device, ScalarType dtype) : base(nameof(GatedMlp))
    {
        _gateUp = new FusedLinear(hidden, [intermediate, intermediate], bias, device, dtype);
        _down = Layers.Linear(intermediate, hidden, bias, device, dtype);
        _act = act;
        register_module(names.Gate, _gateUp.Parts[0]);
        register_module(names.Up, _gateUp.Parts[1]);
        register_module(names.Down, _down);
    }

    // The projections are registered above under their checkpoint names; registering fields would add "_down".
    protected override void RegisterComponents() { }

    internal FusedLinear GateUp => _gateUp;
    internal Linear Down => _down;

    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        var gateUp = _gateUp.Forward(x).chunk(2, -1);      // gate, up: [.., intermediate] each
        var gated = TensorHelpers.MulInto(_act(gateUp[0]), gateUp[1]);
        return RowLinear.Linear(gated, _down.weight!, _down.bias).MoveToOuterDisposeScope();
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
