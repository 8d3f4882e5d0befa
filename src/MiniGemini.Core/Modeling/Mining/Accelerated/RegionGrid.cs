namespace MiniGemini.Modeling;

/// <summary>
/// A grid of <see cref="Rows"/> × <see cref="Cols"/> LR tokens laid over an HR map of
/// (Rows·Block) × (Cols·Block) positions: token (r, c) owns the Block × Block region at rows r·Block…, cols c·Block….
/// </summary>
internal readonly record struct RegionGrid(long Rows, long Cols, long Block)
{
    public long Tokens => Rows * Cols;
    public long Width => Cols * Block;
}

/// <summary>How the fast path computes its attention over HR regions.</summary>
internal enum RegionBackend
{
    /// <summary>
    /// The CPU kernel where it applies (float32 and 16-bit maps on the CPU); elsewhere the tensor operations, compiled
    /// into one function on accelerators (<see cref="CompiledMining"/>), op by op on a CPU.
    /// </summary>
    Auto,
    /// <summary>Tensor operations op by op (any device and dtype): the GPU's formulation, also on a CPU.</summary>
    TensorOps,
    /// <summary>The tensor operations compiled into one function (any device and dtype), op by op if that fails.</summary>
    CompiledTensorOps,
}
