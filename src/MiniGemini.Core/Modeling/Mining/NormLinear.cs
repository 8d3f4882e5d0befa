using MiniGemini.Checkpoints;
using TorchSharp.Modules;
using TorchSharp.Utils;
using static TorchSharp.torch;

namespace MiniGemini.Modeling;

/// <summary>
/// MGM's <c>nn.Sequential(nn.LayerNorm(in), nn.Linear(in, out))</c>, with the same keys ("0", "1") but typed
/// access to both layers, which the fast mining path folds into its own products.
/// </summary>
internal sealed class NormLinear : nn.Module<Tensor, Tensor>
{
    [ComponentName(Name = "0")] public readonly LayerNorm norm;
    [ComponentName(Name = "1")] public readonly Linear linear;

    public NormLinear(long inFeatures, long outFeatures, double eps = 1e-5) : base(nameof(NormLinear))
    {
        norm = nn.LayerNorm(inFeatures, eps);
        linear = LoadingLayers.Linear(inFeatures, outFeatures);
        RegisterComponents();
    }

    public override Tensor forward(Tensor x)
    {
        using var normalized = norm.call(x);
        return linear.call(normalized);
    }
}
