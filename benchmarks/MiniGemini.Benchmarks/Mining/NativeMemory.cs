using System.Text.RegularExpressions;
using BenchmarkDotNet.Columns;
using BenchmarkDotNet.Reports;
using BenchmarkDotNet.Running;

namespace MiniGemini.Benchmarks.Mining;

/// <summary>
/// Process memory as the kernel sees it (libtorch's CPU allocations are not managed memory): VmRSS and the peak
/// VmHWM from /proc/self/status; writing 5 to /proc/self/clear_refs resets the peak.
/// </summary>
static partial class NativeMemory
{
    public static long ResidentBytes() => Read("VmRSS");
    public static long PeakBytes() => Read("VmHWM");

    /// <summary>Starts a new peak from the current resident size; false where the kernel does not allow it.</summary>
    public static bool ResetPeak()
    {
        try
        {
            File.WriteAllText("/proc/self/clear_refs", "5");
            return true;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return false;
        }
    }

    static long Read(string field)
    {
        var match = Regex.Match(File.ReadAllText("/proc/self/status"), $@"^{field}:\s+(\d+) kB", RegexOptions.Multiline);
        return match.Success ? long.Parse(match.Groups[1].Value) * 1024 : -1;
    }

    /// <summary>Where a benchmark process leaves its measurement for the host's columns.</summary>
    public static string ResultFile(string method, MiningSize size) =>
        Path.Combine(Path.GetTempPath(), "minigemini-benchmarks", $"{method}-{size}.rss");

    public static void Save(string method, MiningSize size, long baseline, long peak)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(ResultFile(method, size))!);
        File.WriteAllText(ResultFile(method, size), $"{baseline} {peak}");
    }

    public static (long Baseline, long Peak)? Load(string method, MiningSize size)
    {
        var path = ResultFile(method, size);
        if (!File.Exists(path)) return null;
        var parts = File.ReadAllText(path).Split(' ');
        return (long.Parse(parts[0]), long.Parse(parts[1]));
    }

    public static void Clear()
    {
        var folder = Path.GetDirectoryName(ResultFile("x", MiningSize.Mgm7B))!;
        if (Directory.Exists(folder)) Directory.Delete(folder, recursive: true);
    }
}

/// <summary>
/// A summary column from the measurement each benchmark process saved: the process's peak resident memory, or the
/// peak above the resident memory right after setup (inputs and weights in place) — the method's own working memory.
/// </summary>
sealed class NativeMemoryColumn(bool aboveSetup) : IColumn
{
    public string Id => nameof(NativeMemoryColumn) + aboveSetup;
    public string ColumnName => aboveSetup ? "Native peak above inputs" : "Process peak RSS";
    public bool AlwaysShow => true;
    public ColumnCategory Category => ColumnCategory.Metric;
    public int PriorityInCategory => aboveSetup ? 1 : 0;
    public bool IsNumeric => true;
    public UnitType UnitType => UnitType.Size;
    public string Legend => aboveSetup
        ? "Peak resident memory (VmHWM) minus the resident memory after setup: what the method itself needs"
        : "Peak resident memory (VmHWM) of the benchmark process after setup, inputs and weights included";

    public bool IsAvailable(Summary summary) => true;
    public bool IsDefault(Summary summary, BenchmarkCase benchmarkCase) => false;
    public string GetValue(Summary summary, BenchmarkCase benchmarkCase, SummaryStyle style) => GetValue(summary, benchmarkCase);

    public string GetValue(Summary summary, BenchmarkCase benchmarkCase)
    {
        var size = (MiningSize)benchmarkCase.Parameters["Size"];
        var measured = NativeMemory.Load(benchmarkCase.Descriptor.WorkloadMethod.Name, size);
        if (measured is not { } m) return "?";
        long bytes = aboveSetup ? m.Peak - m.Baseline : m.Peak;
        return $"{bytes / (1024.0 * 1024.0):N0} MB";
    }
}
