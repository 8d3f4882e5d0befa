namespace MiniGemini.Benchmarks.ShapedCheckpoints;

/// <summary>The element types the shaped checkpoints store, with their names in safetensors headers and torch pickles.</summary>
public enum ElementType
{
    /// <summary>bfloat16: every MGM checkpoint's weights.</summary>
    BFloat16,
    /// <summary>float32: the released tower files.</summary>
    Float32,
    /// <summary>int64: the <c>position_ids</c> buffers older CLIP files carry.</summary>
    Int64,
}

/// <summary>Sizes and file-format names of <see cref="ElementType"/>.</summary>
public static class ElementTypes
{
    /// <summary>Bytes per element.</summary>
    public static int Size(this ElementType type) => type switch
    {
        ElementType.BFloat16 => 2,
        ElementType.Float32 => 4,
        ElementType.Int64 => 8,
        _ => throw new ArgumentOutOfRangeException(nameof(type), type, null),
    };

    /// <summary>The dtype string of a safetensors header.</summary>
    public static string SafetensorsName(this ElementType type) => type switch
    {
        ElementType.BFloat16 => "BF16",
        ElementType.Float32 => "F32",
        ElementType.Int64 => "I64",
        _ => throw new ArgumentOutOfRangeException(nameof(type), type, null),
    };

    /// <summary>The legacy storage class a torch pickle names (<c>torch.FloatStorage</c>, …).</summary>
    public static string TorchStorageName(this ElementType type) => type switch
    {
        ElementType.BFloat16 => "BFloat16Storage",
        ElementType.Float32 => "FloatStorage",
        ElementType.Int64 => "LongStorage",
        _ => throw new ArgumentOutOfRangeException(nameof(type), type, null),
    };
}

/// <summary>How a tensor's values are made up.</summary>
public enum InitKind
{
    /// <summary>Uniform in ±<see cref="Init.UniformBound"/>: matrices, embeddings, convolutions.</summary>
    Uniform,
    /// <summary>Every element <see cref="Init.Value"/>: norm weights, biases, layer scale, logit scale.</summary>
    Constant,
    /// <summary>0, 1, 2, … along the elements: position-id buffers.</summary>
    Positions,
}

/// <summary>A tensor's initial values.</summary>
/// <param name="Kind">Random, constant or positions.</param>
/// <param name="Value">The constant, for <see cref="InitKind.Constant"/>.</param>
public readonly record struct Init(InitKind Kind, double Value = 0)
{
    /// <summary>Half-width of the uniform distribution: small, so that activations stay finite through deep stacks.</summary>
    public const double UniformBound = 0.02;

    /// <summary>Uniform random values in ±<see cref="UniformBound"/>.</summary>
    public static Init Uniform { get; } = new(InitKind.Uniform);

    /// <summary>All zeros (biases, and Gemma's norm weights, which are stored as an offset from 1).</summary>
    public static Init Zero { get; } = new(InitKind.Constant, 0);

    /// <summary>All ones (LayerNorm and RMSNorm weights).</summary>
    public static Init One { get; } = new(InitKind.Constant, 1);

    /// <summary>0, 1, 2, … (position ids).</summary>
    public static Init Positions { get; } = new(InitKind.Positions);

    /// <summary>Every element <paramref name="value"/>.</summary>
    public static Init Constant(double value) => new(InitKind.Constant, value);
}

/// <summary>One tensor of a checkpoint: its key, shape, element type and how its values are made up.</summary>
/// <param name="Key">The state-dict key.</param>
/// <param name="Shape">The shape (empty for a scalar).</param>
/// <param name="Type">The stored element type.</param>
/// <param name="Init">The values.</param>
public sealed record TensorSpec(string Key, long[] Shape, ElementType Type, Init Init)
{
    /// <summary>Number of elements (1 for a scalar).</summary>
    public long Elements => Shape.Aggregate(1L, (a, b) => a * b);

    /// <summary>Bytes of the stored data.</summary>
    public long Bytes => Elements * Type.Size();

    /// <summary>The shape as <c>[a, b]</c>.</summary>
    public string ShapeText => "[" + string.Join(", ", Shape) + "]";
}
