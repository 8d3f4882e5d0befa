using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using static TorchSharp.torch.nn.functional;

namespace MiniGemini.Modeling;

/// <summary>
/// HF <c>MixtralSparseMoeBlock</c>: router logits → softmax in float32 → top-k → renormalised weights; each expert
/// runs only on the tokens routed to it and its weighted output is added back with <c>index_add_</c>.
/// </summary>
internal sealed class SparseMoeBlock : nn.Module<Tensor, Tensor>
{
    readonly Linear gate;
    readonly ModuleList<GatedMlp> experts;
    readonly int _topK;

    public SparseMoeBlock(int hidden, int intermediate, int expertCount, int topK, Func<Tensor, Tensor> act, Device device, ScalarType dtype)
        : base(nameof(SparseMoeBlock))
    {
        gate = Layers.Linear(hidden, expertCount, bias: false, device, dtype);
        experts = new ModuleList<GatedMlp>(Enumerable.Range(0, expertCount)
            .Select(_ => new GatedMlp(hidden, intermediate, bias: false, act, GatedMlp.ExpertNames, device, dtype)).ToArray());
        _topK = topK;
        RegisterComponents();
    }

    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        var tokens = x.reshape(-1, x.shape[^1]);                                   // [N, H]
        var probs = softmax(gate.call(tokens), -1, ScalarType.Float32);            // [N, E]
        var (weights, chosen) = probs.topk(_topK, -1);                              // [N, k]
        weights = (weights / weights.sum(-1, keepdim: true)).to(x.dtype).reshape(-1); // [N·k]
        var output = zeros_like(tokens);

        // Which tokens each expert serves: one host read per layer, the price of running only the chosen experts.
        var routes = chosen.reshape(-1).cpu().data<long>().ToArray();              // token n, slot j at n·k + j
        using var topK = _topK.ToScalar();
        for (int e = 0; e < experts.Count; e++)
        {
            var slots = Enumerable.Range(0, routes.Length).Where(i => routes[i] == e).Select(i => (long)i).ToArray();
            if (slots.Length == 0) continue;
            var slotIndex = tensor(slots, device: x.device);
            var tokenIndex = slotIndex.div(topK, rounding_mode: RoundingMode.floor);                  // [n_e]
            var expertOut = experts[e].call(tokens.index_select(0, tokenIndex));                     // [n_e, H]
            output.index_add_(0, tokenIndex, expertOut * weights.index_select(0, slotIndex).unsqueeze(-1), Scalars.One);
        }
        return output.view(x.shape).MoveToOuterDisposeScope();
    }
}
