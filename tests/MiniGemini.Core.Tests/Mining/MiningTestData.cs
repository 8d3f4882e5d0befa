using MiniGemini.Modeling;
using TorchSharp;
using static TorchSharp.torch;

namespace MiniGemini.Tests.Mining;

/// <summary>
/// The four ways a mining forward can run: the reference, and the fast path with the CPU kernel or with its tensor
/// operations op by op or compiled.
/// </summary>
public enum MiningVariant
{
    Reference,
    FastKernel,
    FastTensorOps,
    FastCompiled,
}

/// <summary>Seeded random mining weights and inputs for property tests and leak tests.</summary>
static class MiningTestData
{
    public static void Configure(PatchInfoMining mining, MiningVariant variant)
    {
        mining.Implementation = variant == MiningVariant.Reference ? MiningImplementation.Reference : MiningImplementation.Fast;
        // The CPU kernel is what the automatic choice runs for the float32 and 16-bit CPU maps of these tests.
        mining.Backend = variant switch
        {
            MiningVariant.FastTensorOps => RegionBackend.TensorOps,
            MiningVariant.FastCompiled => RegionBackend.CompiledTensorOps,
            _ => RegionBackend.Auto,
        };
    }

    /// <summary>A module whose LayerNorm affines are near 1/0 and whose Linears are scaled like trained ones.</summary>
    public static PatchInfoMining RandomMining(long hidden, long auxHidden, int seed)
    {
        var mining = new PatchInfoMining(hidden, auxHidden);
        using var generator = new Generator((ulong)seed);
        using var _ = no_grad();
        foreach (var (name, parameter) in mining.named_parameters())
        {
            using var noise = randn(parameter.shape, generator: generator);
            bool norm = name.Contains(".0.", StringComparison.Ordinal);
            bool isWeight = name.EndsWith("weight", StringComparison.Ordinal);
            double std = norm ? 0.2 : 1.0 / Math.Sqrt(parameter.shape[^1]);
            parameter.copy_(norm && isWeight ? noise * std + 1 : noise * std);
        }
        return mining;
    }

    /// <summary>
    /// HR features with a per-position offset and scale (so LayerNorm statistics matter) and, optionally, one block of
    /// constant features (LayerNorm of a constant row). Offsets stay below the spread, as in real feature maps: with
    /// |μ| ≫ σ float32 LayerNorm itself loses digits, in the reference as anywhere.
    /// </summary>
    public static Tensor RandomMap(long batch, long channels, long side, Generator generator, bool flatBlock = false, long block = 1)
    {
        using var scope = NewDisposeScope();
        var offset = randn([batch, 1, side, side], generator: generator) * 0.5;
        var scale = rand([batch, 1, side, side], generator: generator) * 1.5 + 0.5;
        var map = randn([batch, channels, side, side], generator: generator) * scale + offset;
        if (flatBlock) map[TensorIndex.Colon, TensorIndex.Colon, TensorIndex.Slice(0, block), TensorIndex.Slice(0, block)] = tensor(0.75f);
        return map.MoveToOuterDisposeScope();
    }
}
