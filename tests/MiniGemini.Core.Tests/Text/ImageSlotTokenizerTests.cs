using System.Text.Json;
using MiniGemini.Tests.Parity;
using MiniGemini.Text;
using Xunit;
using static MiniGemini.Tests.Text.TextTestData;

namespace MiniGemini.Tests.Text;

public class ImageSlotTokenizerTests
{
    public static TheoryData<string> MgmFolders => FixtureCatalog.Cases(FixtureKind.Mgm);

    [Theory]
    [MemberData(nameof(MgmFolders))]
    public void ReproducesTheReferenceIdsOfTheMgmCase(string id)
    {
        var folder = FixtureCatalog.Resolve(id);
        using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(folder, "case.json")));
        var prompt = doc.RootElement.GetProperty("prompt").GetString()!;
        var expected = doc.RootElement.GetProperty("input_ids_with_image").EnumerateArray().Select(e => e.GetInt32()).ToArray();

        var tokenizer = MiniGeminiTokenizer.FromFolder(Path.Combine(folder, "model"));
        var actual = ImageSlotTokenizer.Tokenize(tokenizer, prompt);

        Assert.True(expected.SequenceEqual(actual), $"{id}\n  expected {Show(expected)}\n  actual   {Show(actual)}");
        Assert.Equal(prompt.Split(ImageSlotTokenizer.ImageToken).Length - 1, ImageSlotTokenizer.CountImages(actual));
    }

    [Fact]
    public void EachChunkIsTokenizedOnItsOwnWithBosOnceAtTheStart()
    {
        var tokenizer = Small;
        const string prompt = "USER: <image>\nWhat is this? <image>\nAnd this? ASSISTANT:";
        var chunks = prompt.Split("<image>");
        // Each chunk gets the dummy prefix of a fresh call, which a single call with a placeholder would not.
        int[] expected =
        [
            tokenizer.BosId!.Value,
            .. tokenizer.Encode(chunks[0], addBos: false), ImageSlotTokenizer.ImageTokenIndex,
            .. tokenizer.Encode(chunks[1], addBos: false), ImageSlotTokenizer.ImageTokenIndex,
            .. tokenizer.Encode(chunks[2], addBos: false),
        ];
        Assert.Equal(expected, ImageSlotTokenizer.Tokenize(tokenizer, prompt));
        Assert.NotEqual(tokenizer.Encode("\nWhat", addBos: false)[0], tokenizer.Encode("x\nWhat", addBos: false)[1]);
    }

    [Fact]
    public void PromptStartingWithAnImageKeepsBosBeforeThePlaceholder()
    {
        var tokenizer = Small;
        var ids = ImageSlotTokenizer.Tokenize(tokenizer, "<image>\nhi");
        Assert.Equal([tokenizer.BosId!.Value, ImageSlotTokenizer.ImageTokenIndex, .. tokenizer.Encode("\nhi", addBos: false)], ids);
        Assert.Equal([tokenizer.BosId!.Value, ImageSlotTokenizer.ImageTokenIndex], ImageSlotTokenizer.Tokenize(tokenizer, "<image>"));
    }

    [Fact]
    public void PromptWithoutImagesIsTheDefaultEncoding()
    {
        var tokenizer = Small;
        Assert.Equal(tokenizer.Encode("no image here"), ImageSlotTokenizer.Tokenize(tokenizer, "no image here"));
        Assert.Equal(0, ImageSlotTokenizer.CountImages(ImageSlotTokenizer.Tokenize(tokenizer, "no image here")));
    }
}
