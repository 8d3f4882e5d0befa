namespace MiniGemini.Benchmarks.ShapedCheckpoints;

/// <summary>
/// The zip CRC-32 (polynomial 0xEDB88320), slicing by 8 bytes (eight independent table lookups per 8 bytes instead of
/// a chain of eight dependent ones), so checksumming a tower file costs less than writing it.
/// </summary>
public sealed class Crc32
{
    static readonly uint[][] Tables = BuildTables();
    uint _crc = 0xFFFFFFFF;

    /// <summary>The checksum of everything appended so far.</summary>
    public uint Value => ~_crc;

    /// <summary>Appends <paramref name="data"/>.</summary>
    public void Append(ReadOnlySpan<byte> data)
    {
        uint crc = _crc;
        var t = Tables;
        int i = 0;
        for (; i + 8 <= data.Length; i += 8)
        {
            uint low = crc ^ (uint)(data[i] | data[i + 1] << 8 | data[i + 2] << 16 | data[i + 3] << 24);
            crc = t[7][low & 0xFF] ^ t[6][(low >> 8) & 0xFF] ^ t[5][(low >> 16) & 0xFF] ^ t[4][low >> 24]
                ^ t[3][data[i + 4]] ^ t[2][data[i + 5]] ^ t[1][data[i + 6]] ^ t[0][data[i + 7]];
        }
        for (; i < data.Length; i++) crc = t[0][(crc ^ data[i]) & 0xFF] ^ (crc >> 8);
        _crc = crc;
    }

    /// <summary>The checksum of <paramref name="data"/>.</summary>
    public static uint Of(ReadOnlySpan<byte> data)
    {
        var crc = new Crc32();
        crc.Append(data);
        return crc.Value;
    }

    static uint[][] BuildTables()
    {
        var tables = new uint[8][];
        tables[0] = new uint[256];
        for (uint n = 0; n < 256; n++)
        {
            uint c = n;
            for (int k = 0; k < 8; k++) c = (c & 1) != 0 ? 0xEDB88320 ^ (c >> 1) : c >> 1;
            tables[0][n] = c;
        }
        for (int t = 1; t < 8; t++)
        {
            tables[t] = new uint[256];
            for (int n = 0; n < 256; n++) tables[t][n] = (tables[t - 1][n] >> 8) ^ tables[0][tables[t - 1][n] & 0xFF];
        }
        return tables;
    }
}
