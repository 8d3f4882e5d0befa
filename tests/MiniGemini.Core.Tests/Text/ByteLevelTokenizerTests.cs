using FsCheck;
using FsCheck.Fluent;
using MiniGemini.Text;
using Xunit;
using static MiniGemini.Tests.Text.TextTestData;
using Layout = MiniGemini.Tests.Text.SyntheticByteLevelFolder.Layout;

namespace MiniGemini.Tests.Text;

/// <summary>Llama-3-style byte-level tokenizers on a synthetic vocabulary built in <see cref="SyntheticByteLevelFolder"/>.</summary>
public sealed class ByteLevelTokenizerTests : IDisposable
{
    readonly Dictionary<Layout, (SyntheticByteLevelFolder Folder, MiniGeminiTokenizer Tokenizer)> _layouts =
        Enum.GetValues<Layout>().ToDictionary(l => l, l =>
        {
            var folder = SyntheticByteLevelFolder.Create(l);
            return (folder, MiniGeminiTokenizer.FromFolder(folder.Path));
        });

    public void Dispose()
    {
        foreach (var (folder, _) in _layouts.Values) folder.Dispose();
    }

    public static TheoryData<Layout> Layouts => new(Enum.GetValues<Layout>());

    static readonly string[] Samples =
    [
        "Mini-Gemini mines patch info from a high-resolution view.",
        "It's what they've said, isn't it?  Double  spaces\n\nand\ttabs 1234567",
        "Café naïve — “quoted” 漢字かな 😀🚀",
        "def forward(self, x): return self.proj(x) + x",
        "",
        "   ",
    ];

    List<int> Reference(Layout layout, string text) => layout switch
    {
        Layout.TokenizerJsonWithMerges => SyntheticByteLevelFolder.EncodeMerges(text, ignoreMerges: false),
        _ => SyntheticByteLevelFolder.EncodeTiktoken(text),
    };

    [Theory]
    [MemberData(nameof(Layouts))]
    public void EncodesAsTheReferenceAlgorithm(Layout layout)
    {
        var tokenizer = _layouts[layout].Tokenizer;
        Assert.False(tokenizer.IsSentencePiece);
        foreach (var text in Samples)
        {
            var expected = Reference(layout, text);
            var actual = tokenizer.Encode(text, addBos: false);
            Assert.True(expected.SequenceEqual(actual), $"{layout} \"{Escape(text)}\"\n  expected {Show(expected)}\n  actual   {Show(actual)}");
        }
        // The corpus words were learned as merges: a frequent word must not come out as single bytes.
        Assert.True(tokenizer.Encode(" resolution", addBos: false).Length < " resolution".Length);
    }

    [Theory]
    [MemberData(nameof(Layouts))]
    public void RandomTextEncodesAsTheReferenceAndRoundTrips(Layout layout)
    {
        var tokenizer = _layouts[layout].Tokenizer;
        Check.One(Quick(200), Prop.ForAll(UnicodeText(), text =>
        {
            var ids = tokenizer.Encode(text, addBos: false);
            var expected = Reference(layout, text);
            Expect(expected.SequenceEqual(ids), $"\"{Escape(text)}\"\n  expected {Show(expected)}\n  actual   {Show(ids)}");
            var decoded = tokenizer.Decode(ids);
            return Expect(decoded == text, $"\"{Escape(text)}\" → \"{Escape(decoded)}\"");
        }));
    }

    [Theory]
    [MemberData(nameof(Layouts))]
    public void SpecialTokensAreSingleIdsAndBosComesFromTheFolder(Layout layout)
    {
        var tokenizer = _layouts[layout].Tokenizer;
        var bos = SyntheticByteLevelFolder.SpecialId("<|begin_of_text|>");
        var eot = SyntheticByteLevelFolder.SpecialId("<|eot_id|>");
        Assert.Equal(bos, tokenizer.BosId);
        Assert.Equal(SyntheticByteLevelFolder.SpecialId("<|end_of_text|>"), tokenizer.EosId);
        Assert.True(tokenizer.AddsBosByDefault);
        Assert.Equal(eot, tokenizer.TokenToId("<|eot_id|>"));
        Assert.Equal("<|eot_id|>", tokenizer.IdToToken(eot));
        Assert.Equal(SyntheticByteLevelFolder.Vocab.TokenBytes.Count + SyntheticByteLevelFolder.SpecialNames.Length, tokenizer.VocabSize);

        var ids = tokenizer.Encode("<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>", addBos: true, parseSpecialTokens: true);
        Assert.Equal(bos, ids[0]);
        Assert.Equal(SyntheticByteLevelFolder.SpecialId("<|start_header_id|>"), ids[1]);
        Assert.Equal(eot, ids[^1]);
        Assert.Equal(1, ids.Count(id => id == eot));
        Assert.Equal("user\n\nHi", tokenizer.Decode(ids));
        Assert.Equal("<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>", tokenizer.Decode(ids, skipSpecialTokens: false));
        Assert.Equal(tokenizer.Encode("Hi", addBos: true), tokenizer.Encode("Hi"));
    }

    [Fact]
    public void GenerationConfigAddsEndOfSequenceIds()
    {
        var tokenizer = _layouts[Layout.TokenizerJson].Tokenizer;
        Assert.Equal(
            [SyntheticByteLevelFolder.SpecialId("<|end_of_text|>"), SyntheticByteLevelFolder.SpecialId("<|eot_id|>")],
            tokenizer.EosIds);
    }

    [Fact]
    public void StreamingNeverSplitsACharacterAndMatchesTheFullDecode()
    {
        var tokenizer = _layouts[Layout.TokenizerJson].Tokenizer;
        var vocabSize = tokenizer.VocabSize;
        // Random ids, many of them single bytes (0–255): multi-byte characters arrive in pieces or broken.
        var id = Gen.Frequency((3, Gen.Choose(0, 255)), (2, Gen.Choose(0, vocabSize - 1)), (1, Gen.Elements(0xE6, 0xBC, 0xA2, 0xF0, 0x9F, 0x98, 0x80)));
        Check.One(Quick(), Prop.ForAll(Arb.From(Gen.ListOf(id).Select(l => l.ToArray())), Arb.From(Gen.Elements(true, false)), (ids, skip) =>
        {
            var deltas = Stream(tokenizer, ids, skip);
            Assert.All(deltas, d => Assert.True(IsWellFormed(d), $"delta \"{Escape(d)}\" splits a character"));
            return Expect(string.Concat(deltas) == tokenizer.Decode(ids, skip), Show(ids));
        }));

        // 😀 is four bytes: nothing shows until the last one.
        Assert.Equal(["", "", "", "😀", ""], Stream(tokenizer, [0xF0, 0x9F, 0x98, 0x80]));
    }

    [Fact]
    public void CleanUpTokenizationSpacesAppliesToDecodeAndStreamAlike()
    {
        using var folder = SyntheticByteLevelFolder.Create(Layout.TokenizerJson, cleanUpSpaces: true);
        var tokenizer = MiniGeminiTokenizer.FromFolder(folder.Path);
        const string text = "Hello , world . It 's fine , do n't worry ? Yes ! They 're here ' ok ' .";
        var ids = tokenizer.Encode(text, addBos: true);
        // Hugging Face's ten replacements, in order (" ." first, so the final " ' ." keeps its quote's space).
        const string expected = "Hello, world. It's fine, don't worry? Yes! They're here'ok '.";
        Assert.Equal(expected, tokenizer.Decode(ids));
        Assert.Equal(expected, string.Concat(Stream(tokenizer, ids)));
        Check.One(Quick(), Prop.ForAll(Arb.From(Gen.ListOf(Gen.Elements(" ", ".", "'", "s", "n't", " 're", "?", "x", ",")).Select(string.Concat)), s =>
        {
            var streamed = string.Concat(Stream(tokenizer, tokenizer.Encode(s, addBos: false)));
            return Expect(streamed == tokenizer.Decode(tokenizer.Encode(s, addBos: false)), $"\"{s}\" streamed \"{streamed}\"");
        }));
    }
}
