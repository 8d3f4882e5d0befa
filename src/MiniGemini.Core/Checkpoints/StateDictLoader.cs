using System.Runtime.ExceptionServices;
using TorchSharp;

namespace MiniGemini.Checkpoints;

/// <summary>Rules for loading a checkpoint sub-tree into a module.</summary>
internal sealed record LoadOptions
{
    /// <summary>
    /// Keys (relative to the prefix) that the module does not own and that are skipped on purpose, e.g. a text tower,
    /// a classifier head, or a <c>position_ids</c> buffer. Anything else the module lacks is reported as unexpected.
    /// </summary>
    public Func<string, bool> IsForeign { get; init; } = _ => false;

    /// <summary>Module keys allowed to be absent from the checkpoint (e.g. a tied <c>lm_head.weight</c>).</summary>
    public Func<string, bool> MayBeMissing { get; init; } = _ => false;

    /// <summary>
    /// Module keys whose tensor may become a view of the checkpoint's memory-mapped file instead of a copy (when the
    /// source can map it, the module's tensor is on the CPU and its dtype is the stored one). None by default: the
    /// module must not expect its tensors where it put them (e.g. as views into a joint tensor).
    /// </summary>
    public Func<string, bool> MayMap { get; init; } = _ => false;
}

/// <summary>
/// Loads the tensors under a key prefix of a checkpoint into a module whose parameter and buffer names equal the
/// checkpoint keys without that prefix. Keys and shapes are compared before any data is read, so a mismatch never
/// leaves a module half-loaded, and a shape difference is always an error (<c>copy_</c> would broadcast silently).
/// Floating-point values are converted to each parameter's dtype on copy (the model's dtype is the caller's choice);
/// integer or boolean data for a floating-point tensor, or the reverse, is a mismatch.
/// </summary>
internal static class StateDictLoader
{
    /// <summary>
    /// Receives (bytes read, bytes to read) of each <see cref="Load"/> on this flow, at its start and then after tensors
    /// (about every 1 % of its bytes); the model builder sets it for its progress reports.
    /// </summary>
    internal static readonly AsyncLocal<Action<long, long>?> Progress = new();

    /// <summary>Loads <paramref name="prefix"/>* of <paramref name="source"/> into <paramref name="module"/>.</summary>
    /// <exception cref="ModelLoadException">Missing keys, shape mismatches, or unexpected keys, listed in <see cref="ModelLoadException.Report"/>.</exception>
    public static LoadReport Load(torch.nn.Module module, ITensorSource source, string prefix = "", LoadOptions? options = null)
    {
        options ??= new LoadOptions();
        var targets = module.state_dict();
        var report = Compare(targets, source, prefix, options);
        if (!report.IsComplete)
            throw ModelLoadException.Mismatch($"Checkpoint does not fit {module.GetName()}: {report}", report, source.Location);

        var progress = Progress.Value;
        var bytes = report.Loaded.Select(key => source.TryGetInfo(prefix + key, out var info) ? info.ByteLength : 0).ToList();
        long total = bytes.Sum(), read = 0, reported = 0;
        progress?.Invoke(0, total);
        var gate = new object();
        int front = 0, back = report.Loaded.Count - 1;
        Exception? failure = null;

        // Two readers, one from each end of the key list, so that they mostly read different files (a file serves one
        // reader at a time): MGM-7B loads about 10 % faster so (docs/benchmarks.md#real-sizes).
        void Reader(bool fromFront)
        {
            try
            {
                using var _ = torch.no_grad();
                while (true)
                {
                    int i;
                    lock (gate)
                    {
                        if (front > back) return;
                        i = fromFront ? front++ : back--;
                    }
                    LoadOne(source, prefix, options, report.Loaded[i], targets[report.Loaded[i]]);
                    lock (gate)
                    {
                        read += bytes[i];
                        if (progress is not null && (read - reported >= total / 100 || read == total))
                        {
                            progress(read, total);
                            reported = read;
                        }
                    }
                }
            }
            catch (Exception e)
            {
                lock (gate)
                {
                    failure ??= e;
                    front = back + 1; // the other reader stops at its next key
                }
            }
        }

        if (Environment.ProcessorCount == 1 || report.Loaded.Count < 2)
            Reader(fromFront: true);
        else
        {
            var second = Task.Run(() => Reader(fromFront: false));
            Reader(fromFront: true);
            second.Wait();
        }
        if (failure is not null) ExceptionDispatchInfo.Capture(failure).Throw();
        return report;
    }

    static void LoadOne(ITensorSource source, string prefix, LoadOptions options, string key, torch.Tensor target)
    {
        if (options.MayMap(key) && target.device_type == DeviceType.CPU && source.TryGetInfo(prefix + key, out var info) &&
            info.DType == target.dtype && source.TryMap(prefix + key, out var mapped))
        {
            using (mapped) target.set_(mapped);
        }
        else
        {
            source.ReadInto(prefix + key, target);
        }
    }

    /// <summary>Compares keys and shapes without reading any tensor data.</summary>
    public static LoadReport Compare(IReadOnlyDictionary<string, torch.Tensor> targets, ITensorSource source, string prefix, LoadOptions options)
    {
        var loaded = new List<string>();
        var missing = new List<string>();
        var allowedMissing = new List<string>();
        var mismatches = new List<(string, string, string)>();
        var dtypeMismatches = new List<(string, string, string)>();
        foreach (var (key, target) in targets.OrderBy(kv => kv.Key, StringComparer.Ordinal))
        {
            if (!source.TryGetInfo(prefix + key, out var info))
            {
                (options.MayBeMissing(key) ? allowedMissing : missing).Add(key);
                continue;
            }
            if (!info.Shape.SequenceEqual(target.shape))
                mismatches.Add((key, info.ShapeText, TensorHelpers.Shape(target.shape)));
            else if (torch.is_floating_point(info.DType) != torch.is_floating_point(target.dtype) || IsBool(info.DType) != IsBool(target.dtype))
                dtypeMismatches.Add((key, info.DType.ToString(), target.dtype.ToString()));
            else
                loaded.Add(key);
        }

        var unexpected = new List<string>();
        var skipped = new List<string>();
        foreach (var full in source.Keys.Where(k => k.StartsWith(prefix, StringComparison.Ordinal)).OrderBy(k => k, StringComparer.Ordinal))
        {
            var key = full[prefix.Length..];
            if (targets.ContainsKey(key)) continue;
            (options.IsForeign(key) ? skipped : unexpected).Add(key);
        }
        return new LoadReport
        {
            Source = source.Location, Prefix = prefix, Loaded = loaded, Missing = missing, AllowedMissing = allowedMissing,
            Unexpected = unexpected, Skipped = skipped, ShapeMismatches = mismatches, DtypeMismatches = dtypeMismatches,
        };
    }

    static bool IsBool(torch.ScalarType type) => type == torch.ScalarType.Bool;

    /// <summary>
    /// The first of <paramref name="candidates"/> under which <paramref name="probeKey"/> exists, e.g. to accept a CLIP
    /// checkpoint with or without its <c>vision_model.</c> prefix. Null when none matches.
    /// </summary>
    public static string? FindPrefix(ITensorSource source, string probeKey, params string[] candidates) =>
        candidates.FirstOrDefault(p => source.TryGetInfo(p + probeKey, out _));
}
