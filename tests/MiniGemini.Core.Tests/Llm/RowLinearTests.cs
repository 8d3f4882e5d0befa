using System.Runtime.Intrinsics.X86;
using MiniGemini.Checkpoints;
using MiniGemini.Modeling;
using Xunit;
using static TorchSharp.torch;

namespace MiniGemini.Tests.Llm;

public sealed class RowLinearTests
{
    /// <summary>
    /// One bfloat16 row against the float32 product of the same values, rounded to bfloat16: equal up to the rounding of
    /// a sum taken in another order (one bfloat16 step, 2⁻⁸ relative), for row lengths with and without a tail
    /// after the vector blocks, with a bias, and for an x that is a strided view.
    /// </summary>
    [Theory]
    [InlineData(7, 64, false)]
    [InlineData(33, 2 * 37, true)]
    [InlineData(130, 1000, true)]
    [InlineData(11, 4096 + 2 * 37, true)]
    public void One_row_equals_the_float32_product_rounded_to_bfloat16(long n, long k, bool withBias)
    {
        using var scope = NewDisposeScope();
        var generator = new TorchSharp.torch.Generator(7);
        var weight = randn([n, k], generator: generator).to(ScalarType.BFloat16);
        var x = randn([1, 3, k], generator: generator).to(ScalarType.BFloat16).select(1, 2).unsqueeze(0); // [1, 1, K], strided
        var bias = withBias ? randn([n], generator: generator).to(ScalarType.BFloat16) : null;
        Assert.Equal(Avx512F.IsSupported, RowLinear.Applies(x, weight)); // the loop needs AVX-512
        var ours = RowLinear.Linear(x, weight, bias);
        Assert.Equal(new[] { 1L, 1, n }, ours.shape);
        Assert.Equal(ScalarType.BFloat16, ours.dtype);
        var exact = nn.functional.linear(x.to(ScalarType.Float32), weight.to(ScalarType.Float32), bias?.to(ScalarType.Float32));
        var error = (ours.to(ScalarType.Float32) - exact).abs();
        var allowed = exact.abs() * Math.Pow(2, -8) + 1e-3;
        Assert.True(error.le(allowed).all().item<bool>(), $"max |Δ| {error.max().item<float>():E2}");
    }

    /// <summary>Long rows go through the loop four at a time; each comes out as it does alone, bit for bit.</summary>
    [Fact]
    public void Rows_taken_four_at_a_time_equal_each_row_alone()
    {
        if (!Avx512F.IsSupported) return; // the loop needs AVX-512
        using var scope = NewDisposeScope();
        var generator = new TorchSharp.torch.Generator(9);
        long n = 11, k = 4096 + 2 * 37; // more than 2048 pairs, a tail after the blocks of 32; 11 rows: blocks of 4 and single rows
        var weight = randn([n, k], generator: generator).to(ScalarType.BFloat16);
        var bias = randn([n], generator: generator).to(ScalarType.BFloat16);
        var x = randn([1, 1, k], generator: generator).to(ScalarType.BFloat16);
        var together = RowLinear.Forward(x, weight, bias);
        for (long i = 0; i < n; i++)
        {
            var alone = RowLinear.Forward(x, weight.narrow(0, i, 1), bias.narrow(0, i, 1)); // one row: the single-row loop
            Assert.True(alone.Equals(together.narrow(2, i, 1)), $"row {i} differs");
        }
    }

    /// <summary>
    /// A product split into more parts than threads, each taken by whichever thread is free, gives the bits of one
    /// thread's pass over all rows (here widened to float32 part by part, which must give the same values).
    /// </summary>
    [Fact]
    public void Many_parts_give_the_bits_of_one_pass()
    {
        if (!Avx512F.IsSupported) return; // the loop needs AVX-512
        using var scope = NewDisposeScope();
        var generator = new TorchSharp.torch.Generator(13);
        long n = 16 * 256 + 37, k = 2 * 100;
        var weight = randn([n, k], generator: generator).to(ScalarType.BFloat16);
        var bias = randn([n], generator: generator).to(ScalarType.BFloat16);
        var x = randn([1, 1, k], generator: generator).to(ScalarType.BFloat16);
        int threads = get_num_threads();
        Tensor onePass, split;
        try
        {
            set_num_threads(1);
            onePass = RowLinear.Forward(x, weight, bias);
            set_num_threads(Math.Max(2, threads));
            split = RowLinear.Forward(x, weight, bias, widened: true);
        }
        finally
        {
            set_num_threads(threads);
        }
        Assert.True(split.Equals(onePass.to(ScalarType.Float32)));
    }

    /// <summary>
    /// Weights that start off a cache line (a mapped safetensors file puts tensors wherever its header ends) give the same
    /// bits as the same weights on one: every lane offset (read by aligned loads and shifted into place), half a lane
    /// (read where they lie), short and long rows. The memory around the weights is NaN, so a lane taken from outside a
    /// row shows.
    /// </summary>
    [Theory]
    [InlineData(9, 2 * (32 * 3 + 16))] // a tail of 16 pairs after the blocks of 32
    [InlineData(6, 2 * (2048 + 16 * 3))] // long rows, four at a time
    public void Weights_off_a_cache_line_give_the_same_bits(long n, long k)
    {
        if (!Avx512F.IsSupported) return; // the loop needs AVX-512
        using var scope = NewDisposeScope();
        var generator = new TorchSharp.torch.Generator(11);
        var weight = randn([n, k], generator: generator).to(ScalarType.BFloat16);
        var bias = randn([n], generator: generator).to(ScalarType.BFloat16);
        var x = randn([1, 1, k], generator: generator).to(ScalarType.BFloat16);
        var expected = RowLinear.Forward(x, weight, bias);
        var memory = full([n * k + 64], float.NaN, ScalarType.BFloat16);
        Assert.Equal(0, TensorMemory.Address(memory) % 64); // libtorch's allocations start on a cache line
        for (long offset = 1; offset < 32; offset++) // in bfloat16 elements: odd ones are half a lane off
        {
            var placed = memory.narrow(0, offset, n * k).view(n, k);
            placed.copy_(weight);
            Assert.True(RowLinear.Applies(x, placed));
            Assert.True(expected.Equals(RowLinear.Forward(x, placed, bias)), $"weights {offset * 2} bytes off a cache line");
            memory.fill_(float.NaN);
        }
    }

    /// <summary>
    /// A widened result (the head's logits) is the bfloat16 result in float32, bit for bit, from the loop and from libtorch
    /// (two rows, which the loop leaves to it); float32 stays float32.
    /// </summary>
    [Fact]
    public void A_widened_result_is_the_bfloat16_result_in_float32()
    {
        using var scope = NewDisposeScope();
        var generator = new TorchSharp.torch.Generator(13);
        var weight = randn([37, 2 * 2100], generator: generator).to(ScalarType.BFloat16); // long rows and single rows
        var bias = randn([37], generator: generator).to(ScalarType.BFloat16);
        var x = randn([1, 1, 2 * 2100], generator: generator).to(ScalarType.BFloat16);
        var widened = RowLinear.Linear(x, weight, bias, widened: true);
        Assert.Equal(ScalarType.Float32, widened.dtype);
        Assert.True(RowLinear.Linear(x, weight, bias).to(ScalarType.Float32).Equals(widened));
        var rows = x.expand(1, 2, -1);
        Assert.True(nn.functional.linear(rows, weight, bias).to(ScalarType.Float32).Equals(RowLinear.Linear(rows, weight, bias, widened: true)));
        var x32 = x.to(ScalarType.Float32);
        Assert.Equal(ScalarType.Float32, RowLinear.Linear(x32, weight.to(ScalarType.Float32), widened: true).dtype);
    }

    [Fact]
    public void Other_cases_go_to_libtorch()
    {
        using var scope = NewDisposeScope();
        var weight = randn(8, 16);
        Assert.False(RowLinear.Applies(randn(1, 16), weight));                                            // float32
        Assert.False(RowLinear.Applies(randn(2, 16).to(ScalarType.BFloat16), weight.to(ScalarType.BFloat16))); // two rows
        var trained = weight.to(ScalarType.BFloat16).requires_grad_();
        Assert.False(RowLinear.Applies(randn(1, 16).to(ScalarType.BFloat16), trained));                   // autograd needs libtorch
        var x = randn(2, 16);
        Assert.True(nn.functional.linear(x, weight).Equals(RowLinear.Linear(x, weight)));
    }
}
