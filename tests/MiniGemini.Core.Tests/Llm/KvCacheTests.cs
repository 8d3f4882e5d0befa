using MiniGemini.Modeling;
using Xunit;
using static TorchSharp.torch;

namespace MiniGemini.Tests.Llm;

public sealed class KvCacheTests
{
    [Fact]
    public void The_cache_holds_what_was_written_and_grows_only_as_far_as_it_is_filled()
    {
        using var _ = inference_mode();
        using var scope = NewDisposeScope();
        using var cache = new KvCache(layers: 2, batch: 1, kvHeads: 1, capacity: 131_072, headDim: 4, ScalarType.Float32, CPU);
        Assert.Equal(KvCache.InitialPositions, cache.Allocated); // not the 131,072 positions it may reach

        var written = new List<Tensor>();
        foreach (int t in new[] { 200, 1, 100, 300 }) // the prefill, one token, then past two doublings
        {
            var step = randn(1, t, 2, 4); // [B, T, 2·kv, d]
            cache.EnsureRoom(t);
            for (int layer = 0; layer < 2; layer++) cache.Write(layer, step);
            cache.Advance(t);
            written.Add(step);
        }
        Assert.Equal(601, cache.Length);
        Assert.Equal(1024, cache.Allocated);
        var (keys, values) = cache.Write(1, zeros(1, 0, 2, 4));
        var (expectedKeys, expectedValues) = KvCache.Split(cat(written.ToArray(), 1));
        Assert.True(keys.allclose(expectedKeys, rtol: 0, atol: 0), "keys changed when the storage grew");
        Assert.True(values.allclose(expectedValues, rtol: 0, atol: 0), "values changed when the storage grew");
    }

    [Fact]
    public void A_forward_beyond_the_capacity_is_refused_naming_both_numbers()
    {
        using var cache = new KvCache(layers: 1, batch: 1, kvHeads: 1, capacity: 300, headDim: 4, ScalarType.Float32, CPU);
        cache.EnsureRoom(300);
        cache.Advance(300);
        var e = Assert.Throws<ContextLengthExceededException>(() => cache.EnsureRoom(1));
        Assert.Contains("300", e.Message);
        Assert.Equal(300, cache.Allocated);
    }
}
