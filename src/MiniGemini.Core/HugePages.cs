using System.Diagnostics.CodeAnalysis;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace MiniGemini;

/// <summary>
/// Asks libtorch to back its large CPU tensors with transparent huge pages (<c>THP_MEM_ALLOC_ENABLE=1</c>) before it
/// allocates anything. Without them every tensor of a few megabytes that a forward or backward pass allocates and frees
/// is faulted in again 4 KiB at a time, and training spends much of its time in the kernel doing that
/// (docs/benchmarks.md#huge-pages). libtorch reads the variable once, at its first allocation, from the C environment, which .NET's
/// <see cref="Environment.SetEnvironmentVariable(string, string)"/> does not write; hence <c>setenv</c>, at load.
/// A value the process was started with (e.g. <c>THP_MEM_ALLOC_ENABLE=0</c> to opt out) is left as it is.
/// </summary>
static class HugePages
{
    const string Variable = "THP_MEM_ALLOC_ENABLE";

    [ModuleInitializer]
    [SuppressMessage("Usage", "CA2255:The 'ModuleInitializer' attribute should not be used in libraries",
        Justification = "The setting only counts before libtorch's first allocation, which may precede any call into this library's types.")]
    internal static void Request()
    {
        if (!OperatingSystem.IsLinux() || Environment.GetEnvironmentVariable(Variable) is not null) return;
        try
        {
            _ = setenv(Variable, "1", overwrite: 0);
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
            // A libc without setenv: libtorch keeps its default pages.
        }
    }

    [DllImport("libc", CharSet = CharSet.Ansi, BestFitMapping = false, ThrowOnUnmappableChar = true)]
    static extern int setenv(string name, string value, int overwrite);
}
