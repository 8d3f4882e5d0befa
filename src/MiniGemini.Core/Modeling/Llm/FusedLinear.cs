using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace MiniGemini.Modeling;

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
    Tensor? _weight; // [Σ out, in]; null once the parts hold tensors of their own (SeparateIfLoadedApart)
    Tensor? _bias;   // [Σ out]
    (ScalarType DType, Device Device)? _separateAt;

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

    /// <summary>Whether the parts are views of one joint tensor (false once <see cref="SeparateIfLoadedApart"/> released it).</summary>
    public bool IsJoint => _weight is not null;

    /// <summary>The joint weight [Σ out, in] and bias [Σ out], while <see cref="IsJoint"/>.</summary>
    public Tensor? JointWeight => _weight;
    public Tensor? JointBias => _bias;

    /// <summary>The layers, in the order of their outputs.</summary>
    public IReadOnlyList<Linear> Parts => _parts;

    /// <summary>
    /// x [.., in] → [.., Σ out]: the parts' outputs side by side along the last dimension. When a part's weight
    /// requires gradients (training), the joint weight is assembled from the parts so that autograd reaches them.
    /// </summary>
    public Tensor Forward(Tensor x)
    {
        if (_weight is null)
        {
            using var scope = NewDisposeScope();
            return cat(_parts.Select(p => RowLinear.Linear(x, p.weight!, p.bias)).ToArray(), -1).MoveToOuterDisposeScope();
        }
        // Inference (grad disabled) takes the joint tensor without looking at the parts.
        if (!is_grad_enabled() || !_parts.Any(p => p.weight!.requires_grad || (p.bias?.requires_grad ?? false)))
            return RowLinear.Linear(x, _weight, _bias);
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
        var first = _parts[0].weight!;
        var (dtype, device) = _weight is null ? _separateAt!.Value : (_weight.dtype, _weight.device);
        if (first.dtype == dtype && TensorHelpers.SameDevice(first.device, device)) return;
        using var _ = no_grad();
        var weight = cat(_parts.Select(p => (Tensor)p.weight).ToArray(), 0).DetachFromDisposeScope();
        var bias = _bias is null ? null : cat(_parts.Select(p => (Tensor)p.bias!).ToArray(), 0).DetachFromDisposeScope();
        _weight?.Dispose();
        _bias?.Dispose();
        (_weight, _bias, _separateAt) = (weight, bias, null);
        for (int i = 0; i < _parts.Length; i++)
        {
            var (partWeight, partBias) = Views(i);
            _parts[i].weight = partWeight; // the setters dispose the separate tensors the move made
            if (partBias is not null) _parts[i].bias = partBias;
        }
    }

    /// <summary>
    /// After a load that gave the parts tensors of their own (views of a memory-mapped checkpoint), releases the joint
    /// tensor, and the parts run one by one: joining them would copy what the mapping shares. A no-op while the parts
    /// are still views into the joint tensor. A later move to another device or dtype joins them again.
    /// </summary>
    public void SeparateIfLoadedApart()
    {
        if (_weight is null) return;
        long rowBytes = _weight.shape[1] * _weight.ElementSize, start = Checkpoints.TensorMemory.Address(_weight), offset = 0;
        bool views = true;
        for (int i = 0; i < _parts.Length; offset += _sizes[i], i++)
            views &= Checkpoints.TensorMemory.Address(_parts[i].weight!) == start + offset * rowBytes;
        if (views) return;
        _separateAt = (_weight.dtype, _weight.device);
        // Parts still viewing the joint tensors (a bias the checkpoint could not map) keep its storage alive.
        _weight.Dispose();
        _bias?.Dispose();
        (_weight, _bias) = (null, null);
    }

    (Parameter Weight, Parameter? Bias) Views(int part)
    {
        long offset = _sizes.Take(part).Sum(), size = _sizes[part];
        var weight = new Parameter(_weight!.narrow(0, offset, size), requires_grad: false);
        var bias = _bias is null ? null : new Parameter(_bias.narrow(0, offset, size), requires_grad: false);
        return (weight, bias);
    }

    /// <summary>Releases the joint tensors (the parts' views are released with the owning module).</summary>
    public void Dispose()
    {
        _weight?.Dispose();
        _bias?.Dispose();
    }
}
