using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using TorchSharp;
using Xunit;

namespace MiniGemini.Tests.Pipeline;

/// <summary>What the library asks of libtorch and its OpenMP runtime when it loads.</summary>
public sealed class LibTorchEnvironmentTests
{
    // The library's settings only count before libtorch loads and first allocates: load it before any test runs.
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

    /// <summary>libgomp reads its spin count when libtorch loads it; the library has written it by then.</summary>
    [Fact]
    public void Loading_the_library_shortens_the_OpenMP_spin()
    {
        // .NET's view of the environment is the process's start: a spin count or wait policy given there is kept.
        if (Environment.GetEnvironmentVariable("GOMP_SPINCOUNT") is not null || Environment.GetEnvironmentVariable("OMP_WAIT_POLICY") is not null) return;
        Assert.Equal("10000", Marshal.PtrToStringAnsi(getenv("GOMP_SPINCOUNT")));
    }

    static long AnonHugePagesKiB() => File.ReadLines("/proc/self/smaps_rollup")
        .Where(l => l.StartsWith("AnonHugePages:", StringComparison.Ordinal))
        .Select(l => long.Parse(l.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], System.Globalization.CultureInfo.InvariantCulture)).Single();

    [DllImport("libc")]
    static extern IntPtr getenv(string name);
}
