using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace MiniGemini.Llm;

/// <summary>
/// Linear layers that read the same input (q/k/v, gate/up) with their weights stored side by side in one tensor, so
/// they run as one matmul: one op instead of several per layer and token. Each part is still a <see cref="Linear"/>
/// of its own, registered by its owner under its checkpoint name, whose weight (and bias) is a view into the joint
/// tensor — loading, <c>state_dict()</c> and random initialisation see the parts, and there is one copy of the data.
/// </summary>
/// <remarks>
/// TorchSharp's <c>Module.to</c> moves each part on its own, which gives each its own storage; the owner calls
/// <see cref="Rejoin"/> after a move (from <c>_toEpilog</c>) to bring them back into one tensor.
/// </remarks>
internal sealed class FusedLinear : IDisposable
{
    readonly Linear[] _parts;
    readonly long[] _sizes;
    Tensor _weight; // [Σ out, in]
    Tensor? _bias;  // [Σ out]

    public FusedLinear(long inFeatures, long[] outFeatures, bool bias, Device device, ScalarType dtype)
    {
        _sizes = outFeatures;
        long total = outFeatures.Sum();
        _weight = empty(total, inFeatures, dtype: dtype, device: device).DetachFromDisposeScope();
        _bias = bias ? zeros(total, dtype: dtype, device: device).DetachFromDisposeScope() : null;
        _parts = new Linear[outFeatures.Length];
        for (int i = 0; i < _parts.Length; i++)
        {
            var (weight, partBias) = Views(i);
            _parts[i] = nn.Linear(weight, partBias);
        }
    }

    /// <summary>The layers, in the order of their outputs.</summary>
    public IReadOnlyList<Linear> Parts => _parts;

    /// <summary>
    /// x [.., in] → [.., Σ out]: the parts' outputs side by side along the last dimension. When a part's weight
    /// requires gradients (training), the joint weight is assembled from the parts so that autograd reaches them.
    /// </summary>
    public Tensor Forward(Tensor x)
    {
        // Inference (grad disabled) takes the joint tensor without looking at the parts.
        if (!is_grad_enabled() || !_parts.Any(p => p.weight!.requires_grad || (p.bias?.requires_grad ?? false)))
            return nn.functional.linear(x, _weight, _bias);
        using var weight = cat(_parts.Select(p => (Tensor)p.weight!).ToArray(), 0);
        using var bias = _bias is null ? null : cat(_parts.Select(p => (Tensor)p.bias!).ToArray(), 0);
        return nn.functional.linear(x, weight, bias);
    }

    /// <summary>
    /// Joins the parts into one tensor again if a move gave them storages of their own; a no-op when they still
    /// share the joint tensor's device and dtype (a move to where the module already is replaces nothing).
    /// </summary>
    public void Rejoin()
    {
        var first = _parts[0].weight;
        if (first.dtype == _weight.dtype && TensorHelpers.SameDevice(first.device, _weight.device)) return;
        using var _ = no_grad();
        var weight = cat(_parts.Select(p => (Tensor)p.weight).ToArray(), 0).DetachFromDisposeScope();
        var bias = _bias is null ? null : cat(_parts.Select(p => (Tensor)p.bias!).ToArray(), 0).DetachFromDisposeScope();
        _weight.Dispose();
        _bias?.Dispose();
        (_weight, _bias) = (weight, bias);
        for (int i = 0; i < _parts.Length; i++)
        {
            var (partWeight, partBias) = Views(i);
            _parts[i].weight = partWeight; // the setters dispose the separate tensors the move made
            if (partBias is not null) _parts[i].bias = partBias;
        }
    }

    (Parameter Weight, Parameter? Bias) Views(int part)
    {
        long offset = _sizes.Take(part).Sum(), size = _sizes[part];
        var weight = new Parameter(_weight.narrow(0, offset, size), requires_grad: false);
        var bias = _bias is null ? null : new Parameter(_bias.narrow(0, offset, size), requires_grad: false);
        return (weight, bias);
    }

    /// <summary>Releases the joint tensors (the parts' views are released with the owning module).</summary>
    public void Dispose()
    {
        _weight.Dispose();
        _bias?.Dispose();
    }
}
