using System.Text.Json;
using System.Text.Unicode;
using TorchSharp;

namespace MiniGemini.Checkpoints;

/// <summary>One tensor entry of a safetensors header: type, shape and byte range within the data section.</summary>
internal readonly record struct SafetensorsEntry(string Name, torch.ScalarType DType, long[] Shape, long Begin, long End);

/// <summary>
/// Parses and validates a safetensors header: an 8-byte little-endian length, then that many bytes of JSON
/// mapping tensor names to <c>{dtype, shape, data_offsets}</c> (plus an optional <c>__metadata__</c> string map).
/// Every violation is a <see cref="ModelLoadException"/> naming the file and the tensor.
/// </summary>
internal static class SafetensorsHeader
{
    /// <summary>The reference implementation refuses headers above 100 MB; so do we.</summary>
    public const long MaxHeaderBytes = 100_000_000;

    public static (IReadOnlyList<SafetensorsEntry> Entries, IReadOnlyDictionary<string, string> Metadata) Parse(
        ReadOnlyMemory<byte> json, long dataLength, string file)
    {
        if (!Utf8.IsValid(json.Span))
            throw new ModelLoadException($"{file}: the safetensors header is not valid UTF-8.", file);
        JsonDocument doc;
        try
        {
            doc = JsonDocument.Parse(json, new JsonDocumentOptions { MaxDepth = 16 });
        }
        catch (JsonException e)
        {
            throw new ModelLoadException($"{file}: the safetensors header is not valid JSON ({e.Message}).", file, inner: e);
        }
        using (doc)
        {
            if (doc.RootElement.ValueKind != JsonValueKind.Object)
                throw new ModelLoadException($"{file}: the safetensors header is not a JSON object.", file);
            var entries = new List<SafetensorsEntry>();
            var metadata = new Dictionary<string, string>(StringComparer.Ordinal);
            var names = new HashSet<string>(StringComparer.Ordinal);
            foreach (var property in doc.RootElement.EnumerateObject())
            {
                if (!names.Add(property.Name))
                    throw new ModelLoadException($"{file}: tensor '{property.Name}' appears twice in the header.", file, property.Name);
                if (property.Name == "__metadata__")
                    ReadMetadata(property.Value, metadata, file);
                else
                    entries.Add(ReadEntry(property.Name, property.Value, dataLength, file));
            }
            CheckTiling(entries, dataLength, file);
            return (entries, metadata);
        }
    }

    static void ReadMetadata(JsonElement value, Dictionary<string, string> metadata, string file)
    {
        if (value.ValueKind != JsonValueKind.Object)
            throw new ModelLoadException($"{file}: __metadata__ must be an object of strings.", file, "__metadata__");
        foreach (var item in value.EnumerateObject())
        {
            if (item.Value.ValueKind != JsonValueKind.String)
                throw new ModelLoadException($"{file}: __metadata__['{item.Name}'] is not a string.", file, "__metadata__");
            metadata[item.Name] = item.Value.GetString()!;
        }
    }

    static SafetensorsEntry ReadEntry(string name, JsonElement value, long dataLength, string file)
    {
        ModelLoadException Bad(string what) => new($"{file}: tensor '{name}': {what}", file, name);

        if (value.ValueKind != JsonValueKind.Object) throw Bad("entry is not an object.");
        if (!value.TryGetProperty("dtype", out var dtypeElement) || dtypeElement.ValueKind != JsonValueKind.String)
            throw Bad("missing string 'dtype'.");
        var dtypeName = dtypeElement.GetString()!;
        if (!StorageTypes.TryFromSafetensors(dtypeName, out var dtype))
            throw Bad(StorageTypes.IsKnownUnsupported(dtypeName)
                ? $"dtype {dtypeName} is not supported (supported: {StorageTypes.SafetensorsNames})."
                : $"unknown dtype '{dtypeName}'.");

        if (!value.TryGetProperty("shape", out var shapeElement) || shapeElement.ValueKind != JsonValueKind.Array)
            throw Bad("missing array 'shape'.");
        var shape = new long[shapeElement.GetArrayLength()];
        int i = 0;
        foreach (var dim in shapeElement.EnumerateArray())
        {
            if (dim.ValueKind != JsonValueKind.Number || !dim.TryGetInt64(out var d) || d < 0)
                throw Bad($"shape entry {i} is not a non-negative integer.");
            shape[i++] = d;
        }

        if (!value.TryGetProperty("data_offsets", out var offsets) || offsets.ValueKind != JsonValueKind.Array || offsets.GetArrayLength() != 2)
            throw Bad("'data_offsets' must be an array [begin, end].");
        long begin = ReadOffset(offsets[0], "begin"), end = ReadOffset(offsets[1], "end");
        if (end < begin) throw Bad($"data_offsets [{begin}, {end}] end before they begin.");
        if (end > dataLength)
            throw Bad($"data_offsets [{begin}, {end}] reach beyond the data section ({dataLength} bytes); the file is truncated or the header lies.");

        long expected;
        try
        {
            expected = checked(shape.Aggregate(1L, (a, b) => checked(a * b)) * StorageTypes.SizeOf(dtype));
        }
        catch (OverflowException)
        {
            throw Bad($"shape {TensorHelpers.Shape(shape)} is too large.");
        }
        if (end - begin != expected)
            throw Bad($"holds {end - begin} bytes but {dtypeName} {TensorHelpers.Shape(shape)} needs {expected}.");
        return new SafetensorsEntry(name, dtype, shape, begin, end);

        long ReadOffset(JsonElement e, string which) =>
            e.ValueKind == JsonValueKind.Number && e.TryGetInt64(out var v) && v >= 0
                ? v
                : throw Bad($"data_offsets {which} is not a non-negative integer.");
    }

    /// <summary>
    /// The tensors must tile the data section exactly, as the reference implementation requires: no two overlap,
    /// no bytes lie between them (a hole) and none after the last one (trailing data).
    /// </summary>
    static void CheckTiling(List<SafetensorsEntry> entries, long dataLength, string file)
    {
        long cursor = 0;
        var previous = default(SafetensorsEntry);
        foreach (var entry in entries.OrderBy(e => e.Begin).ThenBy(e => e.End))
        {
            if (entry.Begin < cursor)
                throw new ModelLoadException(
                    $"{file}: tensors '{previous.Name}' [{previous.Begin}, {previous.End}) and '{entry.Name}' " +
                    $"[{entry.Begin}, {entry.End}) overlap.", file, entry.Name);
            if (entry.Begin > cursor)
                throw new ModelLoadException(
                    $"{file}: bytes [{cursor}, {entry.Begin}) of the data section belong to no tensor (a hole before '{entry.Name}').", file, entry.Name);
            cursor = entry.End;
            if (entry.End > entry.Begin) previous = entry;
        }
        if (cursor != dataLength)
            throw new ModelLoadException(
                $"{file}: {dataLength - cursor} bytes after the last tensor belong to none (the data section has {dataLength}, the tensors end at {cursor}).", file);
    }
}
