using System.Diagnostics.CodeAnalysis;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace MiniGemini;

/// <summary>
/// Settings libtorch and its OpenMP runtime read once from the C environment, written before they do (at load, with
/// <c>setenv</c>: .NET's <see cref="Environment.SetEnvironmentVariable(string, string)"/> does not write the C
/// environment). A value the process was started with is left as it is, so each can be opted out of.
/// <list type="bullet">
/// <item><c>THP_MEM_ALLOC_ENABLE=1</c>: libtorch backs its large CPU tensors with transparent huge pages. Without them
/// every tensor of a few megabytes that a forward or backward pass allocates and frees is faulted in again 4 KiB at a
/// time, and training spends much of its time in the kernel doing that (docs/benchmarks.md#huge-pages).</item>
/// <item><c>GOMP_SPINCOUNT=10000</c> (unless <c>OMP_WAIT_POLICY</c> is set): an idle OpenMP worker spins 10 000 times
/// instead of libgomp's 300 000 before it sleeps. Decoding a token runs libtorch's parallel ops between the library's
/// own matrix-vector products (<c>Modeling/Llm/RowLinear</c>), whose threads need every core the spinning workers hold
/// (docs/benchmarks.md#openmp-spin).</item>
/// </list>
/// </summary>
static class LibTorchEnvironment
{
    [ModuleInitializer]
    [SuppressMessage("Usage", "CA2255:The 'ModuleInitializer' attribute should not be used in libraries",
        Justification = "The settings only count before libtorch loads and first allocates, which may precede any call into this library's types.")]
    internal static void Apply()
    {
        if (!OperatingSystem.IsLinux()) return;
        SetUnlessGiven("THP_MEM_ALLOC_ENABLE", "1");
        if (Environment.GetEnvironmentVariable("OMP_WAIT_POLICY") is null) SetUnlessGiven("GOMP_SPINCOUNT", "10000");
    }

    static void SetUnlessGiven(string variable, string value)
    {
        if (Environment.GetEnvironmentVariable(variable) is not null) return;
        try
        {
            _ = setenv(variable, value, overwrite: 0);
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
            // A libc without setenv: libtorch and libgomp keep their defaults.
        }
    }

    [DllImport("libc", CharSet = CharSet.Ansi, BestFitMapping = false, ThrowOnUnmappableChar = true)]
    static extern int setenv(string name, string value, int overwrite);
}
