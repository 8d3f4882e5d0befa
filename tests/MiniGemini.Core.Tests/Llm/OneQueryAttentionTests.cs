using System.Runtime.Intrinsics.X86;
using MiniGemini.Modeling;
using Xunit;
using static TorchSharp.torch;

namespace MiniGemini.Tests.Llm;

public sealed class OneQueryAttentionTests
{
    /// <summary>
    /// One query per head, keys and values read from KV-cache views ([B, allocated, 2·kv, d] storage, keys first, so
    /// each position's row sits 2·kv·d elements after the last), against libtorch's float32 attention of the same
    /// bfloat16 values: equal up to bfloat16 rounding. MHA (Vicuna's head size), grouped heads (GQA over two rows, MQA with
    /// Gemma-2B's head size), one position, and a batch with many heads.
    /// </summary>
    [Theory]
    [InlineData(1, 32, 1, 128, 67)]
    [InlineData(2, 2, 3, 64, 37)]
    [InlineData(1, 1, 8, 256, 19)]
    [InlineData(1, 4, 1, 32, 1)]
    [InlineData(8, 2, 40, 32, 5)] // 640 heads: more than fit the stack's table of rows per thread
    public void One_query_equals_float32_attention_rounded_to_bfloat16(long batch, long kv, long group, long d, long positions)
    {
        using var scope = NewDisposeScope();
        var generator = new TorchSharp.torch.Generator(5);
        var entries = randn([batch, positions + 3, 2 * kv, d], generator: generator).to(ScalarType.BFloat16); // 3 unfilled positions
        var halves = entries.chunk(2, 2);
        var keys = halves[0].transpose(1, 2).narrow(2, 0, positions);     // [B, kv, S, d], strided as in KvCache
        var values = halves[1].transpose(1, 2).narrow(2, 0, positions);
        var qkv = randn([batch, 1, kv * group + 2 * kv, d], generator: generator).to(ScalarType.BFloat16);
        var q = qkv.narrow(2, 0, kv * group).view(batch, kv, group, d);   // as SelfAttention hands it over
        Assert.Equal(Avx512F.IsSupported, OneQueryAttention.Applies(q, keys, values, null));
        if (!Avx512F.IsSupported) return; // the loop needs AVX-512
        var ours = OneQueryAttention.Forward(q, keys, values);
        Assert.Equal(new[] { batch, kv, group, d }, ours.shape);
        var exact = nn.functional.scaled_dot_product_attention(q.to(ScalarType.Float32), keys.to(ScalarType.Float32), values.to(ScalarType.Float32));
        var error = (ours.to(ScalarType.Float32) - exact).abs();
        var allowed = exact.abs() * Math.Pow(2, -8) + 1e-3;
        Assert.True(error.le(allowed).all().item<bool>(), $"max |Δ| {error.max().item<float>():E2}");
    }

    [Fact]
    public void Other_cases_go_to_libtorch()
    {
        using var scope = NewDisposeScope();
        var q = randn(1, 2, 1, 64).to(ScalarType.BFloat16);
        var keys = randn(1, 2, 5, 64).to(ScalarType.BFloat16);
        Assert.False(OneQueryAttention.Applies(q.to(ScalarType.Float32), keys.to(ScalarType.Float32), keys.to(ScalarType.Float32), null));
        Assert.False(OneQueryAttention.Applies(q, keys, keys, ones(1, 1, 1, 5, ScalarType.Bool)));             // padding needs the mask
        Assert.False(OneQueryAttention.Applies(randn(1, 2, 1, 48).to(ScalarType.BFloat16), randn(1, 2, 5, 48).to(ScalarType.BFloat16),
            randn(1, 2, 5, 48).to(ScalarType.BFloat16), null));                                               // d not a multiple of 32
        Assert.False(OneQueryAttention.Applies(q, keys.transpose(2, 3).contiguous().transpose(2, 3), keys, null)); // rows not contiguous
    }
}
