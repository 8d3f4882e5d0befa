namespace MiniGemini.Training.DetailShapes;

/// <summary>
/// The task's 7-segment digits: an 8 × 14 px box, 2 px strokes. Segments (columns × rows, inclusive): a 0–7 × 0–1,
/// b 6–7 × 0–7, c 6–7 × 6–13, d 0–7 × 12–13, e 0–1 × 6–13, f 0–1 × 0–7, g 0–7 × 6–7.
/// </summary>
internal static class SevenSegment
{
    /// <summary>Box width in pixels.</summary>
    public const int Width = 8;

    /// <summary>Box height in pixels.</summary>
    public const int Height = 14;

    static readonly string[] Segments = ["abcdef", "bc", "abdeg", "abcdg", "bcfg", "acdfg", "acdefg", "abc", "abcdefg", "abcdfg"];

    /// <summary>Per digit and row, the lit columns as bits (bit c = column c).</summary>
    static readonly byte[,] Rows = BuildRows();

    /// <summary>The segment letters of a digit (e.g. <c>bcfg</c> for 4).</summary>
    public static string SegmentsOf(int digit) => Segments[CheckDigit(digit)];

    /// <summary>Whether the pixel at <paramref name="column"/>, <paramref name="row"/> of the box is inked for <paramref name="digit"/>.</summary>
    public static bool IsLit(int digit, int column, int row) =>
        column is >= 0 and < Width && row is >= 0 and < Height && (Rows[CheckDigit(digit), row] >> column & 1) != 0;

    /// <summary>The lit columns of one row as bits (bit c = column c).</summary>
    internal static int RowMask(int digit, int row) => Rows[digit, row];

    static int CheckDigit(int digit) =>
        digit is >= 0 and <= 9 ? digit : throw new ArgumentOutOfRangeException(nameof(digit), digit, "A digit is 0 to 9.");

    static byte[,] BuildRows()
    {
        var rows = new byte[10, Height];
        for (int digit = 0; digit < 10; digit++)
            foreach (char segment in Segments[digit])
            {
                var (c0, c1, r0, r1) = segment switch
                {
                    'a' => (0, 7, 0, 1),
                    'b' => (6, 7, 0, 7),
                    'c' => (6, 7, 6, 13),
                    'd' => (0, 7, 12, 13),
                    'e' => (0, 1, 6, 13),
                    'f' => (0, 1, 0, 7),
                    _ => (0, 7, 6, 7), // g
                };
                for (int r = r0; r <= r1; r++)
                    for (int c = c0; c <= c1; c++)
                        rows[digit, r] |= (byte)(1 << c);
            }
        return rows;
    }
}
