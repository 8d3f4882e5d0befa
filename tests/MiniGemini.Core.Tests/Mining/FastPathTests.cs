using MiniGemini.Checkpoints;
using MiniGemini.Modeling;
using MiniGemini.Tests.Parity;
using TorchSharp;
using Xunit;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace MiniGemini.Tests.Mining;

/// <summary>The fast path's folded weights (their cache and its invalidation), its accuracy in 16-bit and its op count.</summary>
public sealed class FastPathTests(ITestOutputHelper output) : IDisposable
{
    readonly string _dir = Directory.CreateTempSubdirectory("mgm-fast-mining-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    /// <summary>Runs one variant on the inputs, by default as MGM-HD (image_grid 2 with the global view).</summary>
    static Tensor Run(PatchInfoMining mining, MiningVariant variant, Tensor lr, Tensor hr, int grid = 2, bool global = true)
    {
        MiningTestData.Configure(mining, variant);
        return mining.Encode(lr, hr, grid, global);
    }

    static void AssertFollowsReference(PatchInfoMining mining, Tensor lr, Tensor hr, string what, double relative = 1e-4)
    {
        var reference = Run(mining, MiningVariant.Reference, lr, hr);
        TensorAssert.Close(reference, Run(mining, MiningVariant.FastTensorOps, lr, hr), $"tensor ops {what}", relative);
        TensorAssert.Close(reference, Run(mining, MiningVariant.FastKernel, lr, hr), $"kernel {what}", relative);
    }

    /// <summary>Random mining weights, and MGM-HD inputs for them: 4 crops and a global view of 3×3 tokens over a 12×12 map.</summary>
    static (PatchInfoMining Mining, Tensor Lr, Tensor Hr) SmallHdProblem(int seed, ulong inputSeed)
    {
        using var generator = new Generator(inputSeed);
        return (MiningTestData.RandomMining(8, 12, seed), randn([5, 9, 8], generator: generator), MiningTestData.RandomMap(1, 12, 12, generator));
    }

    [Fact]
    public void Folded_weights_are_reused_until_the_weights_change()
    {
        using var scope = NewDisposeScope();
        var (mining, lr, hr) = SmallHdProblem(seed: 1, inputSeed: 4);
        using var _ = mining;
        var before = Run(mining, MiningVariant.FastTensorOps, lr, hr);
        var folded = mining.Folded;
        Assert.True(before.Equals(Run(mining, MiningVariant.FastTensorOps, lr, hr)));
        Assert.Same(folded, mining.Folded);

        // Load: the checkpoint's weights are copied into the same parameter objects.
        using (var other = MiningTestData.RandomMining(8, 12, seed: 2))
        {
            var path = Path.Combine(_dir, "other.safetensors");
            SafetensorsWriter.Write(path, other.state_dict().ToDictionary(kv => "model." + kv.Key, kv => kv.Value));
            using var checkpoint = Checkpoint.Open(path);
            mining.Load(checkpoint, "model.");
        }
        Assert.False(before.Equals(Run(mining, MiningVariant.FastTensorOps, lr, hr)), "new weights, new result");
        AssertFollowsReference(mining, lr, hr, "after Load");

        // load_state_dict, also in place.
        using (var third = MiningTestData.RandomMining(8, 12, seed: 3))
            mining.load_state_dict(third.state_dict());
        AssertFollowsReference(mining, lr, hr, "after load_state_dict");

        // An edit in place by other means, announced.
        using (no_grad())
            mining.Value.linear.weight.mul_(-2);
        mining.RefoldWeights();
        AssertFollowsReference(mining, lr, hr, "after an edit in place and RefoldWeights");

        // to(): the parameters are replaced by float64 ones.
        mining.to(ScalarType.Float64);
        var (lr64, hr64) = (lr.to(ScalarType.Float64), hr.to(ScalarType.Float64));
        var fast64 = Run(mining, MiningVariant.FastTensorOps, lr64, hr64);
        Assert.Equal(ScalarType.Float64, fast64.dtype);
        TensorAssert.Close(Run(mining, MiningVariant.Reference, lr64, hr64), fast64, "float64 after to()", relative: 1e-10);
        Assert.NotSame(folded, mining.Folded);
    }

    /// <summary>
    /// In bfloat16 and float16 the fast path (tensor operations, the GPU path) is about as far from the float64 result
    /// as the reference itself: folding in float64 and rounding once loses nothing against MGM's own 16-bit rounding.
    /// </summary>
    [Theory]
    [InlineData(ScalarType.BFloat16, 1, false, 1)]
    [InlineData(ScalarType.BFloat16, 2, true, 2)]
    [InlineData(ScalarType.Float16, 1, false, 3)]
    [InlineData(ScalarType.Float16, 2, true, 4)]
    public void In_16_bit_the_fast_path_is_as_accurate_as_the_reference(ScalarType dtype, int grid, bool global, int seed)
    {
        using var scope = NewDisposeScope();
        using var mining = MiningTestData.RandomMining(32, 48, seed);
        using var generator = new Generator((ulong)seed);
        long views = grid * grid + (global ? 1 : 0);
        var lr = randn([views, 16, 32], generator: generator).to(dtype);
        var hr = MiningTestData.RandomMap(1, 48, grid * 4 * 4, generator).to(dtype);
        mining.to(dtype);                                        // the truth uses the same rounded weights and inputs
        mining.to(ScalarType.Float64);
        var truth = Run(mining, MiningVariant.Reference, lr.to(ScalarType.Float64), hr.to(ScalarType.Float64), grid, global);
        mining.to(dtype);
        double reference = RelativeError(truth, Run(mining, MiningVariant.Reference, lr, hr, grid, global));
        double fast = RelativeError(truth, Run(mining, MiningVariant.FastTensorOps, lr, hr, grid, global));
        output.WriteLine($"{dtype}, image_grid {grid}: max |Δ| / max |truth|: reference {reference:E2}, fast {fast:E2}");
        Assert.True(fast <= 1.5 * reference, $"{dtype}: fast {fast:E2} vs reference {reference:E2} (float64 truth)");
    }

    /// <summary>
    /// A map whose channels lie side by side in memory, as the ConvNeXt's stages are, is read by the CPU kernel too
    /// (after one copy): the same bits as the NCHW map gives. The tensor operations round differently, so the last
    /// check shows that the kernel ran.
    /// </summary>
    [Theory]
    [InlineData(ScalarType.Float32, 1, false)]
    [InlineData(ScalarType.BFloat16, 1, false)]
    [InlineData(ScalarType.BFloat16, 2, true)]
    public void A_channels_last_map_is_read_by_the_kernel(ScalarType dtype, int grid, bool global)
    {
        using var scope = NewDisposeScope();
        using var mining = MiningTestData.RandomMining(16, 24, seed: 7);
        mining.to(dtype);
        using var generator = new Generator(8);
        var lr = randn([grid * grid + (global ? 1 : 0), 9, 16], generator: generator).to(dtype);
        var hr = MiningTestData.RandomMap(1, 24, grid * 3 * 2, generator).to(dtype);       // [1, Da, H, W], NCHW
        var channelsLast = hr.permute(0, 2, 3, 1).contiguous().permute(0, 3, 1, 2);           // the same values, NHWC in memory
        Assert.NotEqual(1, channelsLast.stride(3));
        var kernel = Run(mining, MiningVariant.FastKernel, lr, hr, grid, global);
        Assert.True(kernel.Equals(Run(mining, MiningVariant.FastKernel, lr, channelsLast, grid, global)), $"{dtype}: a channels-last map gives other bits");
        Assert.False(kernel.Equals(Run(mining, MiningVariant.FastTensorOps, lr, hr, grid, global)), $"{dtype}: the kernel and the tensor operations agree bit for bit");
    }

    /// <summary>
    /// Each tensor operation costs host time (TorchSharp call, dispatch, kernel launch) that a GPU, done with its part,
    /// waits on: the tensor-operation path keeps to a fixed, small number of them per call. The counts are of tensor
    /// handles created (new tensors and views; in-place operations create none), and none is left alive.
    /// </summary>
    [Theory]
    [InlineData(MiningVariant.FastTensorOps, 1, false, 17)]
    [InlineData(MiningVariant.FastTensorOps, 2, true, 46)]
    [InlineData(MiningVariant.FastCompiled, 1, false, 2)]
    [InlineData(MiningVariant.FastCompiled, 2, true, 14)]
    public void The_tensor_operation_path_creates_few_tensors_per_call(MiningVariant variant, int grid, bool global, int limit)
    {
        using var mining = MiningTestData.RandomMining(16, 24, seed: 5);
        mining.to(ScalarType.BFloat16);
        MiningTestData.Configure(mining, variant);
        using var generator = new Generator(6);
        using var lr = randn([grid * grid + (global ? 1 : 0), 9, 16], generator: generator).to(ScalarType.BFloat16);
        using var hr = MiningTestData.RandomMap(1, 24, grid * 3 * 2, generator).to(ScalarType.BFloat16);
        mining.Encode(lr, hr, grid, global).Dispose();                                    // folds the weights
        var statistics = DisposeScopeManager.Statistics;
        long before = statistics.CreatedInScopeCount + statistics.CreatedOutsideScopeCount, live = statistics.ThreadTotalLiveCount;
        mining.Encode(lr, hr, grid, global).Dispose();
        long created = statistics.CreatedInScopeCount + statistics.CreatedOutsideScopeCount - before;
        output.WriteLine($"{variant}, image_grid {grid}, global {global}: {created} tensor handles per call");
        Assert.InRange(created, 1, limit);
        Assert.Equal(live, statistics.ThreadTotalLiveCount);
    }

    /// <summary>
    /// A compiled function that fails with a libtorch error: the call is answered op by op with the same result, and
    /// the module stays with the operations op by op from then on.
    /// </summary>
    [Fact]
    public void A_failing_compiled_function_gives_way_to_the_operations_op_by_op()
    {
        using var scope = NewDisposeScope();
        var (mining, lr, hr) = SmallHdProblem(seed: 7, inputSeed: 8);
        using var _ = mining;
        var expected = Run(mining, MiningVariant.FastTensorOps, lr, hr);

        mining.UseCompiledMining(Failing());
        Assert.True(expected.Equals(Run(mining, MiningVariant.FastCompiled, lr, hr)), "the answer after the failure");
        Assert.Contains("compiled mining fails here", mining.CompiledMiningFailure!.Message);
        Assert.Null(mining.CompiledFor(hr));
        Assert.True(expected.Equals(Run(mining, MiningVariant.FastCompiled, lr, hr)), "the next answer");
    }

    /// <summary>The compiled function runs by default on accelerators only: on a CPU the kernel or the operations op by op do.</summary>
    [Fact]
    public void The_compiled_function_is_not_the_default_on_a_cpu()
    {
        using var mining = MiningTestData.RandomMining(8, 12, seed: 7);
        using var map = zeros(1, 12, 6, 6);
        Assert.Null(mining.CompiledFor(map));
        mining.Backend = RegionBackend.CompiledTensorOps;
        Assert.NotNull(mining.CompiledFor(map));
    }

    /// <summary>A function whose script compiles but fails with a libtorch error when it runs.</summary>
    internal static CompiledMining Failing() => CompiledMining.FromSource(CompiledMining.Source.Replace(
        "    images = map.size(0)\n", "    assert rows < 0, \"compiled mining fails here\"\n    images = map.size(0)\n", StringComparison.Ordinal));

    static double RelativeError(Tensor truth, Tensor actual)
    {
        using var scope = NewDisposeScope();
        var expected = truth.to(ScalarType.Float64);
        return (actual.to(ScalarType.Float64) - expected).abs().max().item<double>() / expected.abs().max().item<double>();
    }
}
