using TorchSharp;

namespace MiniGemini.Checkpoints;

/// <summary>What a checkpoint says about one stored tensor, known before its data is read.</summary>
/// <param name="Name">The key in the checkpoint.</param>
/// <param name="DType">The stored element type.</param>
/// <param name="Shape">The stored shape.</param>
/// <param name="FilePath">The file that holds the data.</param>
internal sealed record TensorInfo(string Name, torch.ScalarType DType, long[] Shape, string FilePath)
{
    /// <summary>Number of elements.</summary>
    public long ElementCount => Shape.Aggregate(1L, (a, b) => a * b);

    /// <summary>Bytes of the stored data.</summary>
    public long ByteLength => ElementCount * DType switch
    {
        torch.ScalarType.Float64 or torch.ScalarType.Int64 or torch.ScalarType.ComplexFloat32 => 8,
        torch.ScalarType.Float32 or torch.ScalarType.Int32 => 4,
        torch.ScalarType.Float16 or torch.ScalarType.BFloat16 or torch.ScalarType.Int16 => 2,
        torch.ScalarType.ComplexFloat64 => 16,
        _ => 1,
    };

    /// <summary>The shape as <c>[a, b, c]</c>.</summary>
    public string ShapeText => TensorHelpers.Shape(Shape);
}

/// <summary>A set of named tensors on disk: a safetensors file, a sharded folder, or a PyTorch pickle.</summary>
internal interface ITensorSource : IDisposable
{
    /// <summary>The file or folder the tensors come from, for messages.</summary>
    string Location { get; }

    /// <summary>Every tensor key.</summary>
    IReadOnlyCollection<string> Keys { get; }

    /// <summary>Describes a tensor without reading its data.</summary>
    bool TryGetInfo(string key, out TensorInfo info);

    /// <summary>Reads one tensor into a new contiguous CPU tensor of the stored dtype and shape.</summary>
    /// <exception cref="ModelLoadException">The key is unknown or the data cannot be read.</exception>
    torch.Tensor Load(string key);

    /// <summary>
    /// Reads one tensor into <paramref name="destination"/>, a tensor of the stored shape (any dtype of the same kind,
    /// any device), converting on the way. Sources that can read straight into the destination's memory do so, so that
    /// loading a model holds no second copy of a tensor.
    /// </summary>
    /// <exception cref="ModelLoadException">The key is unknown, the shapes differ, or the data cannot be read.</exception>
    void ReadInto(string key, torch.Tensor destination)
    {
        using var value = Load(key);
        if (!value.shape.SequenceEqual(destination.shape))
            throw new ModelLoadException($"{Location}: tensor '{key}' is {TensorHelpers.Shape(value.shape)}, the destination {TensorHelpers.Shape(destination.shape)}.", Location, key);
        using var _ = torch.no_grad();
        destination.copy_(value);
    }

    /// <summary>
    /// A CPU tensor of the stored dtype and shape whose memory is the file's own, mapped copy-on-write (writes stay in
    /// this process), with its pages read in; false where the source cannot map it (another format, an unaligned
    /// offset). A mapped tensor costs no allocation and no copy, and pages of the same file are shared with the page
    /// cache and with other processes that map it.
    /// </summary>
    bool TryMap(string key, out torch.Tensor tensor)
    {
        tensor = null!;
        return false;
    }
}
