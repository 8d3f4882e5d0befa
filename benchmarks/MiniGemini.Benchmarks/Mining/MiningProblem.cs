using MiniGemini.Modeling;
using TorchSharp;
using static TorchSharp.torch;

namespace MiniGemini.Benchmarks.Mining;

/// <summary>
/// How a <see cref="MiningProblem"/> runs: MGM's literal formulation, the fast path as the library picks its backend
/// (the CPU kernel on CPUs, the compiled tensor operations on GPUs), or the fast path's tensor operations op by op or
/// compiled on any device.
/// </summary>
public enum MiningMethod
{
    Reference,
    Fast,
    TensorOps,
    Compiled,
}

/// <summary>The two MGM-7B-sized mining workloads.</summary>
public enum MiningSize
{
    /// <summary>One view: LR [1, 576, 1024], HR map [1, 2880, 192, 192] (image_grid 1).</summary>
    Mgm7B,
    /// <summary>HD: 4 crops + global, LR [5, 576, 1024], HR map [1, 2880, 384, 384] (image_grid 2, image_global).</summary>
    Hd,
}

/// <summary>Seeded random weights and inputs of one workload, on a device and dtype, as the fusion stage hands them over.</summary>
sealed class MiningProblem : IDisposable
{
    public const long Hidden = 1024, AuxHidden = 2880, Tokens = 576, Side = 192;

    public required MiningSize Size { get; init; }
    public required PatchInfoMining Mining { get; init; }
    public required Tensor Lr { get; init; }
    public required Tensor Hr { get; init; }
    public int Grid => Size == MiningSize.Hd ? 2 : 1;
    public bool Global => Size == MiningSize.Hd;

    public static MiningProblem Create(MiningSize size, Device device, ScalarType dtype, int seed = 1)
    {
        using var scope = NewDisposeScope();
        using var generator = new Generator((ulong)seed);
        var mining = new PatchInfoMining(Hidden, AuxHidden);
        using (no_grad())
            foreach (var (name, parameter) in mining.named_parameters())
            {
                var noise = randn(parameter.shape, generator: generator);
                bool norm = name.Contains(".0.", StringComparison.Ordinal);
                if (norm) parameter.copy_(name.EndsWith("weight", StringComparison.Ordinal) ? 1 + noise * 0.2 : noise * 0.2);
                else parameter.copy_(noise / Math.Sqrt(parameter.shape[^1]));
            }
        mining.to(device, dtype);
        long views = size == MiningSize.Hd ? 5 : 1, side = size == MiningSize.Hd ? 2 * Side : Side;
        var lr = randn([views, Tokens, Hidden], generator: generator);
        // Channels of an HR position vary around a per-position offset with a per-position spread.
        var hr = randn([1, AuxHidden, side, side], generator: generator)
            .mul_(rand([1, 1, side, side], generator: generator).mul_(1.5).add_(0.5))
            .add_(randn([1, 1, side, side], generator: generator).mul_(0.5));
        return new MiningProblem
        {
            Size = size, Mining = mining,
            Lr = lr.to(dtype, device).DetachFromDisposeScope(), Hr = hr.to(dtype, device).DetachFromDisposeScope(),
        };
    }

    public Tensor Run(MiningMethod method)
    {
        Mining.Implementation = method == MiningMethod.Reference ? MiningImplementation.Reference : MiningImplementation.Fast;
        Mining.Backend = method switch
        {
            MiningMethod.TensorOps => RegionBackend.TensorOps,
            MiningMethod.Compiled => RegionBackend.CompiledTensorOps,
            _ => RegionBackend.Auto,
        };
        return Mining.Encode(Lr, Hr, Grid, Global);
    }

    public void Dispose()
    {
        Mining.Dispose();
        Lr.Dispose();
        Hr.Dispose();
    }
}
