using MiniGemini.Checkpoints;
using MiniGemini.Modeling;
using MiniGemini.Tests.Parity;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace MiniGemini.Tests.Mining;

public sealed class PatchInfoMiningTests : IDisposable
{
    readonly string _dir = Directory.CreateTempSubdirectory("mgm-mining-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public void Keys_and_shapes_mirror_mgm_checkpoints()
    {
        using var mining = new PatchInfoMining(64, 160);
        var shapes = mining.state_dict().ToDictionary(kv => kv.Key, kv => "[" + string.Join(",", kv.Value.shape) + "]");
        var expected = new Dictionary<string, string>
        {
            ["vlm_uni_query_projector.0.weight"] = "[64]", ["vlm_uni_query_projector.0.bias"] = "[64]",
            ["vlm_uni_query_projector.1.weight"] = "[64,64]", ["vlm_uni_query_projector.1.bias"] = "[64]",
            ["vlm_uni_aux_projector.0.weight"] = "[160]", ["vlm_uni_aux_projector.0.bias"] = "[160]",
            ["vlm_uni_aux_projector.1.weight"] = "[64,160]", ["vlm_uni_aux_projector.1.bias"] = "[64]",
            ["vlm_uni_val_projector.0.weight"] = "[160]", ["vlm_uni_val_projector.0.bias"] = "[160]",
            ["vlm_uni_val_projector.1.weight"] = "[64,160]", ["vlm_uni_val_projector.1.bias"] = "[64]",
        };
        Assert.Equal(expected.OrderBy(kv => kv.Key), shapes.OrderBy(kv => kv.Key));
        Assert.All(new[] { mining.Query.norm, mining.Key.norm, mining.Value.norm }, norm => Assert.Equal(1e-5, norm.eps));
    }

    [Fact]
    public void Loads_from_an_mgm_checkpoint_and_leaves_other_keys_alone()
    {
        using var scope = NewDisposeScope();
        using var source = MiningTestData.RandomMining(8, 12, seed: 3);
        var tensors = source.state_dict().ToDictionary(kv => "model." + kv.Key, kv => kv.Value);
        tensors["model.layers.0.self_attn.q_proj.weight"] = zeros(4, 4);
        tensors["model.mm_projector.0.weight"] = zeros(4, 8);
        tensors["lm_head.weight"] = zeros(4, 4);
        var path = Path.Combine(_dir, "model.safetensors");
        SafetensorsWriter.Write(path, tensors);

        using var checkpoint = Checkpoint.Open(path);
        using var mining = new PatchInfoMining(8, 12);
        var report = mining.Load(checkpoint, "model.");
        Assert.Equal(12, report.Loaded.Count);
        Assert.Equal(2, report.Skipped.Count);
        foreach (var (key, value) in source.state_dict())
            Assert.True(mining.state_dict()[key].Equals(value), key);
    }

    [Fact]
    public void A_missing_or_misshapen_key_is_named()
    {
        using var scope = NewDisposeScope();
        using var source = new PatchInfoMining(8, 12);
        var tensors = source.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value);
        tensors.Remove("vlm_uni_val_projector.1.bias");
        tensors["vlm_uni_aux_projector.1.weight"] = zeros(8, 13);
        var path = Path.Combine(_dir, "broken.safetensors");
        SafetensorsWriter.Write(path, tensors);
        using var checkpoint = Checkpoint.Open(path);
        using var mining = new PatchInfoMining(8, 12);
        var e = Assert.Throws<ModelLoadException>(() => mining.Load(checkpoint));
        Assert.NotNull(e.Report);
        Assert.Contains("vlm_uni_aux_projector.1.weight is [8, 13] in the checkpoint but [8, 12]", e.Message);
        Assert.Contains("missing: vlm_uni_val_projector.1.bias", e.Message);

        var empty = Path.Combine(_dir, "other.safetensors");
        SafetensorsWriter.Write(empty, new Dictionary<string, Tensor> { ["model.norm.weight"] = ones(4) });
        using var other = Checkpoint.Open(empty);
        var missing = Assert.Throws<ModelLoadException>(() => mining.Load(other));
        Assert.Contains("vlm_uni_query_projector.0.weight", missing.Message);
    }

    public static TheoryData<long[], long[], int, bool, string> BadShapes() => new()
    {
        { [3, 16, 8], [2, 12, 16, 16], 1, false, "need 2 LR views" },
        { [9, 16, 8], [2, 12, 16, 16], 2, true, "need 10 LR views" },
        { [2, 15, 8], [2, 12, 16, 16], 1, false, "square grid of tokens, got 15" },
        { [2, 16, 7], [2, 12, 16, 16], 1, false, "LR features must be [views, tokens, 8], got [2, 16, 7]" },
        { [2, 16, 8], [2, 11, 16, 16], 1, false, "HR map must be [B, 12, H, W], got [2, 11, 16, 16]" },
        { [2, 16, 8], [2, 12, 18, 18], 1, false, "multiple of image_grid × tokens per side = 1 × 4" },
        { [2, 16, 8], [2, 12, 16, 20], 1, false, "got 16×20" },
        { [10, 16, 8], [2, 12, 20, 20], 2, true, "multiple of image_grid × tokens per side = 2 × 4" },
    };

    [Theory]
    [MemberData(nameof(BadShapes))]
    public void Shapes_that_do_not_fit_are_refused_with_the_shapes_named(long[] lrShape, long[] hrShape, int grid, bool global, string message)
    {
        using var scope = NewDisposeScope();
        using var mining = new PatchInfoMining(8, 12);
        var lr = randn(lrShape);
        var hr = randn(hrShape);
        var e = Assert.ThrowsAny<ArgumentException>(() => mining.Encode(lr, hr, grid, global));
        Assert.Contains(message, e.Message);
    }

    [Fact]
    public void Dtype_mismatches_are_refused()
    {
        using var scope = NewDisposeScope();
        using var mining = new PatchInfoMining(8, 12);
        var e = Assert.Throws<ArgumentException>(() => mining.Encode(randn(1, 4, 8), randn(1, 12, 4, 4, dtype: ScalarType.Float64)));
        Assert.Contains("Float32", e.Message);
        Assert.Contains("Float64", e.Message);
        var weights = Assert.Throws<ArgumentException>(() => mining.Encode(randn(1, 4, 8, dtype: ScalarType.Float64), randn(1, 12, 4, 4, dtype: ScalarType.Float64)));
        Assert.Contains("weights are Float32", weights.Message);
        Assert.Throws<ArgumentOutOfRangeException>(() => mining.Encode(randn(1, 4, 8), randn(1, 12, 4, 4), imageGrid: 0));
    }

    /// <summary>The CPU kernel reads strided maps (a channel slice, a crop of a wider map) in place, with the same result.</summary>
    [Fact]
    public void The_kernel_reads_strided_maps_in_place()
    {
        using var scope = NewDisposeScope();
        using var mining = MiningTestData.RandomMining(8, 12, seed: 5);
        MiningTestData.Configure(mining, MiningVariant.FastKernel);
        using var generator = new Generator(11);
        var lr = randn([2, 9, 8], generator: generator);
        var wide = randn([2, 20, 15, 19], generator: generator);
        var strided = wide[TensorIndex.Colon, TensorIndex.Slice(3, 15), TensorIndex.Slice(0, 15), TensorIndex.Slice(2, 17)];
        Assert.False(strided.is_contiguous());
        var expected = mining.Encode(lr, strided.contiguous());
        Assert.True(expected.Equals(mining.Encode(lr, strided)));
        MiningTestData.Configure(mining, MiningVariant.FastTensorOps);
        TensorAssert.Close(expected, mining.Encode(lr, strided), "tensor ops on the strided map");
    }

    /// <summary>
    /// The CPU kernel reads the HD global view as the bilinear 1/2 downsample of the full map on the fly; that equals
    /// attending over the interpolated map (up to the order of the interpolation's additions). The tensor-operation
    /// path leaves out a per-token constant in every channel, so results are compared centred over channels.
    /// </summary>
    [Theory]
    [InlineData(1, 3, 2, 4)]
    [InlineData(2, 4, 3, 5)]
    [InlineData(1, 2, 5, 1)]
    [InlineData(1, 24, 4, 8)]
    public void The_kernel_reads_the_global_view_at_half_scale_on_the_fly(long images, long patches, long block, long seed)
    {
        using var scope = NewDisposeScope();
        using var mining = new PatchInfoMining(8, 12);
        using var generator = new Generator((ulong)seed);
        long channels = 12, side = 2 * patches * block;
        var map = MiningTestData.RandomMap(images, channels, side, generator);
        var u = randn([images, patches * patches, channels], generator: generator) * 0.5;
        var c = randn([images, patches * patches, 1], generator: generator);
        var queries = cat([u - u.mean([-1], keepdim: true), c, zeros(images, patches * patches, 3)], -1);
        var grid = new RegionGrid(patches, patches, block);
        var expected = RegionAttention.Run(PatchInfoMining.GlobalMap(map, 2), queries, grid, 1e-5, RegionBackend.Auto, mining.Folded);
        var actual = RegionAttention.Run(map, queries, grid, 1e-5, RegionBackend.Auto, mining.Folded, halfScale: true);
        TensorAssert.Close(expected, actual, "half scale on the fly", relative: 1e-5);
        var tensorOps = RegionAttention.Run(map, queries, grid, 1e-5, RegionBackend.TensorOps, mining.Folded, halfScale: true);
        TensorAssert.Close(expected, Centred(tensorOps), "half scale, tensor operations");
    }

    /// <summary>
    /// MGM-HD's crops and global view share one pair of sweeps over the map in the CPU kernel; each result must be the
    /// one the kernel gives for that grid alone, bit for bit (odd channel counts and widths take the scalar tails).
    /// </summary>
    [Theory]
    [MemberData(nameof(KernelCases))]
    public void Crops_and_global_view_in_one_sweep_equal_separate_sweeps(long images, long patches, long block, long channels, long seed)
    {
        using var scope = NewDisposeScope();
        var (map, grid, u, c, halfGrid, halfU, halfC) = KernelProblem(images, patches, block, channels, seed);

        var (full, half) = RegionAttentionKernel.RunWithHalfScale(map, u, c, grid, halfU, halfC, halfGrid, 1e-5);

        Assert.True(RegionAttentionKernel.Run(map, u, c, grid, 1e-5).Equals(full), "crops");
        Assert.True(RegionAttentionKernel.Run(map, halfU, halfC, halfGrid, 1e-5, halfScale: true).Equals(half), "global view");
        Assert.Throws<ArgumentException>(() => RegionAttentionKernel.RunWithHalfScale(map, u, c, grid, halfU, halfC, halfGrid with { Block = block + 1 }, 1e-5));
    }

    /// <summary>
    /// The CPU kernel reads a bfloat16 map as it lies, widening in registers, which is exact: each result has the bits
    /// the kernel gives over a float32 copy of the map, at full scale, at half scale and in one sweep (odd channel
    /// counts and widths take the scalar tails).
    /// </summary>
    [Theory]
    [MemberData(nameof(KernelCases))]
    public void A_bfloat16_map_gives_the_bits_of_its_float32_copy(long images, long patches, long block, long channels, long seed)
    {
        using var scope = NewDisposeScope();
        var (values, grid, u, c, halfGrid, halfU, halfC) = KernelProblem(images, patches, block, channels, seed);
        var map = values.to(ScalarType.BFloat16);
        var copy = map.to(ScalarType.Float32);
        Assert.True(RegionAttentionKernel.Supports(map), "the kernel declines a bfloat16 map");

        Assert.True(RegionAttentionKernel.Run(copy, u, c, grid, 1e-5).Equals(RegionAttentionKernel.Run(map, u, c, grid, 1e-5)), "full scale");
        Assert.True(RegionAttentionKernel.Run(copy, halfU, halfC, halfGrid, 1e-5, halfScale: true)
            .Equals(RegionAttentionKernel.Run(map, halfU, halfC, halfGrid, 1e-5, halfScale: true)), "half scale");
        var (full, half) = RegionAttentionKernel.RunWithHalfScale(map, u, c, grid, halfU, halfC, halfGrid, 1e-5);
        var (copyFull, copyHalf) = RegionAttentionKernel.RunWithHalfScale(copy, u, c, grid, halfU, halfC, halfGrid, 1e-5);
        Assert.True(copyFull.Equals(full), "crops in one sweep");
        Assert.True(copyHalf.Equals(half), "global view in one sweep");
    }

    /// <summary>images, patches, block, channels, seed: odd channel counts and widths take the kernel's scalar tails.</summary>
    public static TheoryData<long, long, long, long, long> KernelCases => new()
    {
        { 1, 3, 2, 12, 4 },
        { 2, 4, 3, 21, 5 },
        { 1, 2, 5, 9, 1 },
        { 1, 12, 4, 8, 8 },
    };

    /// <summary>
    /// A map of <c>2·patches·block</c> square for a grid of 2·patches square and its half-scale grid, with seeded u and
    /// c for each; the tensors live in the caller's dispose scope.
    /// </summary>
    static (Tensor Map, RegionGrid Grid, Tensor U, Tensor C, RegionGrid HalfGrid, Tensor HalfU, Tensor HalfC) KernelProblem(
        long images, long patches, long block, long channels, long seed)
    {
        using var generator = new Generator((ulong)seed);
        var map = MiningTestData.RandomMap(images, channels, 2 * patches * block, generator);
        var (grid, halfGrid) = (new RegionGrid(2 * patches, 2 * patches, block), new RegionGrid(patches, patches, block));
        var (u, c) = (randn([images, grid.Tokens, channels], generator: generator), randn([images, grid.Tokens], generator: generator));
        var (halfU, halfC) = (randn([images, halfGrid.Tokens, channels], generator: generator), randn([images, halfGrid.Tokens], generator: generator));
        return (map, grid, u, c, halfGrid, halfU, halfC);
    }

    /// <summary>Half-precision models run too: the CPU kernel reads a bf16 map in float32, the tensor operations stay in bf16.</summary>
    [Fact]
    public void Bfloat16_mining_agrees_with_float32_to_bfloat16_precision()
    {
        using var scope = NewDisposeScope();
        using var mining = MiningTestData.RandomMining(16, 24, seed: 4);
        using var generator = new Generator(6);
        var lr = randn([10, 9, 16], generator: generator);
        var hr = MiningTestData.RandomMap(2, 24, 24, generator);
        MiningTestData.Configure(mining, MiningVariant.Reference);
        var expected = mining.Encode(lr, hr, 2, true);
        mining.to(ScalarType.BFloat16);
        foreach (var variant in Enum.GetValues<MiningVariant>())
        {
            MiningTestData.Configure(mining, variant);
            var actual = mining.Encode(lr.to(ScalarType.BFloat16), hr.to(ScalarType.BFloat16), 2, true);
            Assert.Equal(ScalarType.BFloat16, actual.dtype);
            TensorAssert.Close(expected, actual, $"bf16 {variant} vs float32 reference", relative: 3e-2);
        }
    }

    /// <summary>
    /// At scale 1/2 the bilinear downsample is a 2×2 mean, so the tensor-operation path pools 16-bit maps with one
    /// matrix product instead of interpolating a float32 copy: the same values, except for rare one-ulp differences
    /// where the interpolation rounds twice (none in this map).
    /// </summary>
    [Theory]
    [InlineData(ScalarType.BFloat16)]
    [InlineData(ScalarType.Float16)]
    public void Half_scale_pooling_matches_the_float32_interpolation_of_16_bit_maps(ScalarType dtype)
    {
        using var scope = NewDisposeScope();
        using var mining = new PatchInfoMining(8, 7);
        using var generator = new Generator(3);
        var map = (MiningTestData.RandomMap(2, 7, 24, generator) * 3).to(dtype);
        var pooled = RegionAttention.HalfScale(map, mining.Folded);
        Assert.Equal(dtype, pooled.dtype);
        Assert.Equal(new long[] { 2, 7, 12, 12 }, pooled.shape);
        Assert.True(pooled.Equals(PatchInfoMining.GlobalMap(map, 2)), $"{dtype}: pooling differs from the interpolation");
    }

    static Tensor Centred(Tensor t) => t - t.mean([-1], keepdim: true);

    [Fact]
    public void Repeated_forwards_leave_no_live_tensors_behind()
    {
        using var mining = MiningTestData.RandomMining(8, 12, seed: 9);
        using var generator = new Generator(2);
        using var lr = randn([5, 4, 8], generator: generator);
        using var hr = randn([1, 12, 8, 8], generator: generator);
        foreach (var variant in Enum.GetValues<MiningVariant>())
        {
            MiningTestData.Configure(mining, variant);
            mining.Encode(lr, hr, 2, true).Dispose();
            var statistics = DisposeScopeManager.Statistics;
            statistics.Reset();
            for (int i = 0; i < 5; i++)
                using (mining.Encode(lr, hr, 2, true)) { }
            Assert.True(statistics.ThreadTotalLiveCount == 0, $"{variant}: {statistics}");
        }
    }
}
