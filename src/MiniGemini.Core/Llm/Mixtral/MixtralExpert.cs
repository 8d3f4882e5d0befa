using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace MiniGemini.Llm.Mixtral;

/// <summary>One Mixtral expert: <c>w2(act(w1·x) * w3·x)</c> (w1 = gate, w3 = up, w2 = down).</summary>
internal sealed class MixtralExpert : nn.Module<Tensor, Tensor>
{
    readonly Linear w1, w2, w3;
    readonly Func<Tensor, Tensor> _act;

    public MixtralExpert(int hidden, int intermediate, Func<Tensor, Tensor> act, Device device, ScalarType dtype) : base(nameof(MixtralExpert))
    {
        w1 = Layers.Linear(hidden, intermediate, bias: false, device, dtype);
        w2 = Layers.Linear(intermediate, hidden, bias: false, device, dtype);
        w3 = Layers.Linear(hidden, intermediate, bias: false, device, dtype);
        _act = act;
        RegisterComponents();
    }

    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        return w2.call(_act(w1.call(x)).mul_(w3.call(x))).MoveToOuterDisposeScope();
    }
}
