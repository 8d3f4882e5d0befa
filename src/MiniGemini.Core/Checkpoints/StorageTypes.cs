using TorchSharp;

namespace MiniGemini.Checkpoints;

/// <summary>Element types as named by safetensors headers and PyTorch storages.</summary>
internal static class StorageTypes
{
    readonly record struct Row(torch.ScalarType Type, string Safetensors, string Storage, int Size);

    /// <summary>Every supported element type: its safetensors name, its PyTorch storage class and its size in bytes.</summary>
    static readonly Row[] Supported =
    [
        new(torch.ScalarType.Float64, "F64", "DoubleStorage", 8),
        new(torch.ScalarType.Float32, "F32", "FloatStorage", 4),
        new(torch.ScalarType.Float16, "F16", "HalfStorage", 2),
        new(torch.ScalarType.BFloat16, "BF16", "BFloat16Storage", 2),
        new(torch.ScalarType.Int64, "I64", "LongStorage", 8),
        new(torch.ScalarType.Int32, "I32", "IntStorage", 4),
        new(torch.ScalarType.Int16, "I16", "ShortStorage", 2),
        new(torch.ScalarType.Int8, "I8", "CharStorage", 1),
        new(torch.ScalarType.Byte, "U8", "ByteStorage", 1),
        new(torch.ScalarType.Bool, "BOOL", "BoolStorage", 1),
    ];

    /// <summary>Types that safetensors defines but libtorch (as TorchSharp exposes it) cannot hold.</summary>
    static readonly HashSet<string> KnownButUnsupported = new(StringComparer.Ordinal)
        { "F8_E4M3", "F8_E5M2", "F8_E8M0", "F4", "F6_E2M3", "F6_E3M2", "U16", "U32", "U64", "C64" };

    /// <summary>The supported safetensors type names, for messages.</summary>
    public static string SafetensorsNames { get; } = string.Join(", ", Supported.Select(r => r.Safetensors));

    public static bool TryFromSafetensors(string name, out torch.ScalarType type) => TryFind(r => r.Safetensors == name, out type);

    public static bool IsKnownUnsupported(string name) => KnownButUnsupported.Contains(name);

    public static bool TryFromTorchStorage(string name, out torch.ScalarType type) => TryFind(r => r.Storage == name, out type);

    public static int SizeOf(torch.ScalarType type) => Of(type).Size;

    public static string SafetensorsName(torch.ScalarType type) => Of(type).Safetensors;

    static bool TryFind(Predicate<Row> match, out torch.ScalarType type)
    {
        int index = Array.FindIndex(Supported, match);
        type = index >= 0 ? Supported[index].Type : default;
        return index >= 0;
    }

    static Row Of(torch.ScalarType type)
    {
        int index = Array.FindIndex(Supported, r => r.Type == type);
        return index >= 0 ? Supported[index] : throw new ArgumentOutOfRangeException(nameof(type), type, "Not a checkpoint element type.");
    }
}
