using TorchSharp;

namespace MiniGemini.Checkpoints;

/// <summary>Element types as named by safetensors headers and PyTorch storages.</summary>
internal static class StorageTypes
{
    static readonly Dictionary<string, torch.ScalarType> Safetensors = new(StringComparer.Ordinal)
    {
        ["F64"] = torch.ScalarType.Float64,
        ["F32"] = torch.ScalarType.Float32,
        ["F16"] = torch.ScalarType.Float16,
        ["BF16"] = torch.ScalarType.BFloat16,
        ["I64"] = torch.ScalarType.Int64,
        ["I32"] = torch.ScalarType.Int32,
        ["I16"] = torch.ScalarType.Int16,
        ["I8"] = torch.ScalarType.Int8,
        ["U8"] = torch.ScalarType.Byte,
        ["BOOL"] = torch.ScalarType.Bool,
    };

    /// <summary>Types that safetensors defines but libtorch (as TorchSharp exposes it) cannot hold.</summary>
    static readonly HashSet<string> KnownButUnsupported = new(StringComparer.Ordinal)
        { "F8_E4M3", "F8_E5M2", "F8_E8M0", "F4", "F6_E2M3", "F6_E3M2", "U16", "U32", "U64", "C64" };

    static readonly Dictionary<string, torch.ScalarType> TorchStorages = new(StringComparer.Ordinal)
    {
        ["DoubleStorage"] = torch.ScalarType.Float64,
        ["FloatStorage"] = torch.ScalarType.Float32,
        ["HalfStorage"] = torch.ScalarType.Float16,
        ["BFloat16Storage"] = torch.ScalarType.BFloat16,
        ["LongStorage"] = torch.ScalarType.Int64,
        ["IntStorage"] = torch.ScalarType.Int32,
        ["ShortStorage"] = torch.ScalarType.Int16,
        ["CharStorage"] = torch.ScalarType.Int8,
        ["ByteStorage"] = torch.ScalarType.Byte,
        ["BoolStorage"] = torch.ScalarType.Bool,
    };

    public static bool TryFromSafetensors(string name, out torch.ScalarType type) => Safetensors.TryGetValue(name, out type);

    public static bool IsKnownUnsupported(string name) => KnownButUnsupported.Contains(name);

    public static bool TryFromTorchStorage(string name, out torch.ScalarType type) => TorchStorages.TryGetValue(name, out type);

    public static int SizeOf(torch.ScalarType type) => type switch
    {
        torch.ScalarType.Float64 or torch.ScalarType.Int64 => 8,
        torch.ScalarType.Float32 or torch.ScalarType.Int32 => 4,
        torch.ScalarType.Float16 or torch.ScalarType.BFloat16 or torch.ScalarType.Int16 => 2,
        torch.ScalarType.Int8 or torch.ScalarType.Byte or torch.ScalarType.Bool => 1,
        _ => throw new ArgumentOutOfRangeException(nameof(type), type, "Not a checkpoint element type."),
    };

    public static string SafetensorsName(torch.ScalarType type) =>
        Safetensors.First(kv => kv.Value == type).Key;
}
