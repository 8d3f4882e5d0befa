namespace MiniGemini;

/// <summary>bfloat16 ↔ float32 one value at a time, with the bits libtorch gives.</summary>
internal static class BFloat16Bits
{
    /// <summary>bfloat16 → float32: its bits are a float32's upper half, so widening is a shift and exact.</summary>
    public static float Widen(ushort value) => BitConverter.UInt32BitsToSingle((uint)value << 16);

    /// <summary>float32 → bfloat16, rounded to nearest even, as libtorch rounds (NaN stays NaN).</summary>
    public static ushort Round(float value)
    {
        uint bits = BitConverter.SingleToUInt32Bits(value);
        if (float.IsNaN(value)) return (ushort)((bits >> 16) | 0x40);
        return (ushort)((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16);
    }
}
