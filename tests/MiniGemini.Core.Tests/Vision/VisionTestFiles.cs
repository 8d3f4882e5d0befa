using MiniGemini.Checkpoints;
using MiniGemini.Modeling;
using TorchSharp;
using static TorchSharp.torch;

namespace MiniGemini.Tests.Vision;

/// <summary>Helpers that write altered copies of fixture checkpoints into a temporary folder.</summary>
internal static class VisionTestFiles
{
    /// <summary>Copies every tensor of <paramref name="source"/> into a new safetensors file, letting <paramref name="edit"/> change the set.</summary>
    public static string Rewrite(string source, string target, Action<Dictionary<string, Tensor>> edit)
    {
        using var scope = NewDisposeScope();
        using var checkpoint = Checkpoint.Open(source);
        var tensors = checkpoint.Keys.ToDictionary(k => k, checkpoint.Load);
        edit(tensors);
        SafetensorsWriter.Write(target, tensors);
        return target;
    }

    /// <summary>Asserts that two modules hold exactly the same keys and values.</summary>
    public static int AssertSameWeights(nn.Module expected, nn.Module actual)
    {
        var e = expected.state_dict();
        var a = actual.state_dict();
        Xunit.Assert.Equal(e.Keys.Order(StringComparer.Ordinal), a.Keys.Order(StringComparer.Ordinal));
        foreach (var (key, value) in e)
            Xunit.Assert.True(value.Equals(a[key]), $"{key} differs");
        return e.Count;
    }

    /// <summary>The state-dict shapes of a module built on the meta device: shapes only, no memory, no initialisation cost.</summary>
    public static Dictionary<string, long[]> MetaShapes(Func<nn.Module> create)
    {
        var saved = get_default_device();
        set_default_device(META);
        try
        {
            using var module = create();
            return module.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.shape);
        }
        finally
        {
            set_default_device(saved);
        }
    }

    /// <summary>Live tensors on this thread, as TorchSharp's leak diagnostics count them.</summary>
    public static long LiveTensors => DisposeScopeManager.Statistics.ThreadTotalLiveCount;
}
