namespace MiniGemini.Generation;

/// <summary>One decoding step's outcome, as plain data.</summary>
/// <param name="Step">0 for the first new token.</param>
/// <param name="TokenIds">Per row: the chosen id, or the pad id for a row that had already finished.</param>
/// <param name="Emitted">Per row: whether <paramref name="TokenIds"/> is a real output of that row (false once it has finished).</param>
/// <param name="Finished">Per row: whether the row has ended (this step's token was an EOS id, or an earlier one was).</param>
internal sealed record GeneratedTokens(int Step, int[] TokenIds, bool[] Emitted, bool[] Finished);
