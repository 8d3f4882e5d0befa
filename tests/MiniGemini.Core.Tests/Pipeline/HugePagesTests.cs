using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using TorchSharp;
using Xunit;

namespace MiniGemini.Tests.Pipeline;

/// <summary>libtorch's large CPU tensors sit on transparent huge pages once the library is loaded.</summary>
public sealed class HugePagesTests
{
    // The library's setting only counts before libtorch's first allocation: load it before any test runs.
    [ModuleInitializer]
    internal static void LoadLibraryFirst() => RuntimeHelpers.RunModuleConstructor(typeof(MiniGeminiBuilder).Module.ModuleHandle);

    [Fact]
    public void Loading_the_library_asks_libtorch_for_huge_pages_and_a_large_tensor_gets_them()
    {
        Assert.Equal("1", Marshal.PtrToStringAnsi(getenv("THP_MEM_ALLOC_ENABLE")));
        const string thp = "/sys/kernel/mm/transparent_hugepage/enabled";
        if (!File.Exists(thp) || File.ReadAllText(thp).Contains("[never]", StringComparison.Ordinal)) return; // the kernel gives none
        long before = AnonHugePagesKiB();
        using var tensor = torch.ones(64L << 20 >> 2);                                          // 64 MiB of float32
        long gained = AnonHugePagesKiB() - before;
        Assert.True(gained >= 32 << 10, $"a 64 MiB tensor added {gained} KiB of huge pages");
    }

    static long AnonHugePagesKiB() => File.ReadLines("/proc/self/smaps_rollup")
        .Where(l => l.StartsWith("AnonHugePages:", StringComparison.Ordinal))
        .Select(l => long.Parse(l.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], System.Globalization.CultureInfo.InvariantCulture)).Single();

    [DllImport("libc")]
    static extern IntPtr getenv(string name);
}
