namespace MiniGemini.Benchmarks.ShapedCheckpoints;

/// <summary>
/// An ordered list of <see cref="TensorSpec"/> being put together, in the vocabulary of PyTorch modules
/// (<c>Linear</c>, <c>LayerNorm</c>, …) so that a component's tensors read like its module tree. Keys are written under
/// the current prefix; the order of the calls is the state-dict order.
/// </summary>
public sealed class TensorList
{
    readonly List<TensorSpec> _tensors = [];
    readonly HashSet<string> _keys = new(StringComparer.Ordinal);
    readonly string _prefix;

    /// <summary>An empty list whose tensors are stored as <paramref name="type"/>.</summary>
    public TensorList(ElementType type) : this(type, "", null) { }

    TensorList(ElementType type, string prefix, TensorList? root)
    {
        Type = type;
        _prefix = prefix;
        Root = root ?? this;
    }

    TensorList Root { get; }

    /// <summary>The element type of floating-point tensors added to this list.</summary>
    public ElementType Type { get; }

    /// <summary>The tensors, in the order added.</summary>
    public IReadOnlyList<TensorSpec> Tensors => Root._tensors;

    /// <summary>A view that adds keys under <c>prefix</c> (appended to this view's prefix) to the same list.</summary>
    public TensorList Under(string prefix) => new(Type, _prefix + prefix, Root);

    /// <summary>Adds one tensor of this list's type.</summary>
    /// <exception cref="InvalidOperationException">The key is already in the list.</exception>
    public TensorList Add(string name, Init init, params long[] shape) => Add(name, Type, init, shape);

    /// <summary>Adds one tensor of another type (an integer buffer).</summary>
    /// <exception cref="InvalidOperationException">The key is already in the list.</exception>
    public TensorList Add(string name, ElementType type, Init init, params long[] shape)
    {
        var key = _prefix + name;
        if (!Root._keys.Add(key)) throw new InvalidOperationException($"Tensor '{key}' is added twice.");
        Root._tensors.Add(new TensorSpec(key, shape, type, init));
        return this;
    }

    /// <summary><c>nn.Linear(inFeatures, outFeatures, bias)</c>: weight [out, in], bias [out].</summary>
    public TensorList Linear(string name, long inFeatures, long outFeatures, bool bias = true)
    {
        Add(name + ".weight", Init.Uniform, outFeatures, inFeatures);
        if (bias) Add(name + ".bias", Init.Zero, outFeatures);
        return this;
    }

    /// <summary><c>nn.LayerNorm(features)</c> (also timm's <c>LayerNorm2d</c>): weight ones, bias zeros.</summary>
    public TensorList LayerNorm(string name, long features)
    {
        Add(name + ".weight", Init.One, features);
        Add(name + ".bias", Init.Zero, features);
        return this;
    }

    /// <summary>An RMSNorm weight: ones, or zeros where the model multiplies by (1 + w) as Gemma does.</summary>
    public TensorList RmsNorm(string name, long features, bool storedAsOffset)
    {
        Add(name + ".weight", storedAsOffset ? Init.Zero : Init.One, features);
        return this;
    }

    /// <summary><c>nn.Embedding(count, dim)</c>: weight [count, dim].</summary>
    public TensorList Embedding(string name, long count, long dim) => Add(name + ".weight", Init.Uniform, count, dim);

    /// <summary><c>nn.Conv2d(in, out, kernel, groups, bias)</c>: weight [out, in / groups, k, k], bias [out].</summary>
    public TensorList Conv2d(string name, long inChannels, long outChannels, long kernel, long groups = 1, bool bias = true)
    {
        Add(name + ".weight", Init.Uniform, outChannels, inChannels / groups, kernel, kernel);
        if (bias) Add(name + ".bias", Init.Zero, outChannels);
        return this;
    }

    /// <summary>Total elements of the tensors whose keys start with <paramref name="prefix"/> (all when empty).</summary>
    public long Elements(string prefix = "") =>
        Tensors.Where(t => t.Key.StartsWith(prefix, StringComparison.Ordinal)).Sum(t => t.Elements);
}
