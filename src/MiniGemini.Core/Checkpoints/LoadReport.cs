using System.Text;
using MiniGemini.Checkpoints;

namespace MiniGemini;

/// <summary>What happened when a checkpoint sub-tree was loaded into a module.</summary>
public sealed class LoadReport
{
    /// <summary>Where the tensors came from.</summary>
    public required string Source { get; init; }
    /// <summary>The key prefix that was mapped onto the module.</summary>
    public required string Prefix { get; init; }
    /// <summary>Module keys that were filled.</summary>
    public IReadOnlyList<string> Loaded { get; init; } = [];
    /// <summary>Module keys with no tensor in the checkpoint.</summary>
    public IReadOnlyList<string> Missing { get; init; } = [];
    /// <summary>Module keys absent from the checkpoint but allowed to be (e.g. tied weights).</summary>
    public IReadOnlyList<string> AllowedMissing { get; init; } = [];
    /// <summary>Checkpoint keys under the prefix that the module does not have.</summary>
    public IReadOnlyList<string> Unexpected { get; init; } = [];
    /// <summary>Checkpoint keys under the prefix skipped by rule.</summary>
    public IReadOnlyList<string> Skipped { get; init; } = [];
    /// <summary>Keys whose checkpoint shape differs from the module's: (key, checkpoint shape, module shape).</summary>
    public IReadOnlyList<(string Key, string CheckpointShape, string ModuleShape)> ShapeMismatches { get; init; } = [];
    /// <summary>
    /// Keys whose checkpoint data is of another kind than the module's tensor (integer or boolean against floating
    /// point): (key, checkpoint dtype, module dtype). Floating-point values convert between floating dtypes.
    /// </summary>
    public IReadOnlyList<(string Key, string CheckpointDtype, string ModuleDtype)> DtypeMismatches { get; init; } = [];

    /// <summary>True when nothing is missing, mis-shaped or unexpected.</summary>
    public bool IsComplete => Missing.Count == 0 && ShapeMismatches.Count == 0 && DtypeMismatches.Count == 0 && Unexpected.Count == 0;

    internal string? FirstProblemKey =>
        ShapeMismatches.Select(m => m.Key).Concat(DtypeMismatches.Select(m => m.Key)).Concat(Missing).Concat(Unexpected).FirstOrDefault();

    /// <summary>A readable multi-line report listing every problem.</summary>
    public override string ToString()
    {
        var sb = new StringBuilder();
        sb.Append($"{Source} (prefix '{Prefix}'): {Loaded.Count} loaded, {Missing.Count} missing, ")
          .Append($"{Unexpected.Count} unexpected, {ShapeMismatches.Count} shape mismatches, {DtypeMismatches.Count} dtype mismatches, {Skipped.Count} skipped by rule.");
        foreach (var (key, ckpt, module) in ShapeMismatches)
            sb.Append($"\n  shape mismatch: {Prefix}{key} is {ckpt} in the checkpoint but {module} in the module");
        foreach (var (key, ckpt, module) in DtypeMismatches)
            sb.Append($"\n  dtype mismatch: {Prefix}{key} holds {ckpt} data in the checkpoint but the module's tensor is {module}");
        foreach (var key in Missing) sb.Append($"\n  missing: {Prefix}{key}");
        foreach (var key in Unexpected) sb.Append($"\n  unexpected: {Prefix}{key}");
        return sb.ToString();
    }
}
