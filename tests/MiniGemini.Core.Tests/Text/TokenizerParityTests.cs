using System.Text.Json;
using MiniGemini.Tests.Parity;
using MiniGemini.Text;
using Xunit;
using Xunit.Abstractions;

namespace MiniGemini.Tests.Text;

/// <summary>
/// Every tokenizer fixture folder (bundled and those listed in MINIGEMINI_EXTRA_FIXTURES): each case's text must
/// encode to exactly SentencePiece's ids, and where the fixture gives them, to its pieces and decoded text.
/// </summary>
public class TokenizerParityTests(ITestOutputHelper output)
{
    public static TheoryData<string> Folders => FixtureCatalog.Cases(FixtureKind.Tokenizer);

    [Theory]
    [MemberData(nameof(Folders))]
    public void EncodesEveryCaseExactlyAsSentencePiece(string id)
    {
        var folder = FixtureCatalog.Resolve(id);
        var tokenizer = MiniGeminiTokenizer.FromFolder(folder);
        using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(folder, "cases.json")));
        var root = doc.RootElement;
        AssertHeader(root, tokenizer);
        // Cases are ids without BOS unless the fixture says otherwise.
        var addBos = root.TryGetProperty("add_bos", out var ab) && ab.ValueKind == JsonValueKind.True;

        var failures = new List<string>();
        var count = 0;
        foreach (var c in root.GetProperty("cases").EnumerateArray())
        {
            count++;
            var text = c.GetProperty("text").GetString()!;
            var expected = Ints(c.GetProperty("ids"));
            var actual = tokenizer.Encode(text, addBos);
            if (!actual.SequenceEqual(expected))
            {
                failures.Add($"text {JsonSerializer.Serialize(text)}\n  expected [{string.Join(", ", expected)}]\n  actual   [{string.Join(", ", actual)}]");
                continue;
            }
            if (c.TryGetProperty("pieces", out var piecesElement))
            {
                var pieces = piecesElement.EnumerateArray().Select(p => p.GetString()).ToArray();
                var actualPieces = expected.Select(tokenizer.IdToToken).ToArray();
                if (!actualPieces.SequenceEqual(pieces))
                    failures.Add($"text {JsonSerializer.Serialize(text)}: pieces [{string.Join(" ", actualPieces)}] instead of [{string.Join(" ", pieces)}]");
            }
            if (c.TryGetProperty("decoded", out var decodedElement))
            {
                var decoded = tokenizer.Decode(expected);
                if (decoded != decodedElement.GetString())
                    failures.Add($"text {JsonSerializer.Serialize(text)}: decoded {JsonSerializer.Serialize(decoded)} instead of {decodedElement.GetRawText()}");
            }
        }
        output.WriteLine($"{id}: {count - failures.Count}/{count} cases exact");
        Assert.True(failures.Count == 0, $"{failures.Count} of {count} cases differ in {id}:\n" + string.Join("\n", failures));
    }

    static void AssertHeader(JsonElement root, MiniGeminiTokenizer tokenizer)
    {
        if (root.TryGetProperty("bos_id", out var bos)) Assert.Equal(bos.GetInt32(), tokenizer.BosId);
        if (root.TryGetProperty("eos_id", out var eos)) Assert.Equal(eos.GetInt32(), tokenizer.EosId);
        if (root.TryGetProperty("unk_id", out var unk)) Assert.Equal(unk.GetInt32(), tokenizer.UnkId);
        if (root.TryGetProperty("vocab_size", out var size)) Assert.Equal(size.GetInt32(), tokenizer.VocabSize);
    }

    static int[] Ints(JsonElement array) => array.EnumerateArray().Select(e => e.GetInt32()).ToArray();
}
