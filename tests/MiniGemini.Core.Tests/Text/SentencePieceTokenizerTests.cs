using FsCheck;
using FsCheck.Fluent;
using MiniGemini.Text;
using Xunit;
using static MiniGemini.Tests.Text.TextTestData;

namespace MiniGemini.Tests.Text;

public class SentencePieceTokenizerTests
{
    public static TheoryData<string> Vocabularies => new() { "small", "mistral" };

    static MiniGeminiTokenizer ByName(string name) => name == "small" ? Small : Mistral;

    [Theory]
    [MemberData(nameof(Vocabularies))]
    public void DecodeOfEncodeIsTheText(string vocabulary)
    {
        var tokenizer = ByName(vocabulary);
        Check.One(Quick(), Prop.ForAll(UnicodeText(), text =>
        {
            if (ContainsSpecialToken(tokenizer, text) || HasSpaceSymbol(text)) return true;
            var ids = tokenizer.Encode(text, addBos: true);
            var decoded = tokenizer.Decode(ids);
            return Expect(decoded == text, $"\"{Escape(text)}\" → {Show(ids)} → \"{Escape(decoded)}\"");
        }));
    }

    /// <summary>SentencePiece writes spaces as U+2581 and reads every U+2581 back as a space, the typed one too.</summary>
    static bool HasSpaceSymbol(string text) => text.Contains('\u2581');

    [Theory]
    [MemberData(nameof(Vocabularies))]
    public void A_typed_space_symbol_decodes_as_a_space_as_in_SentencePiece(string vocabulary)
    {
        var tokenizer = ByName(vocabulary);
        Assert.Equal("a b", tokenizer.Decode(tokenizer.Encode("a\u2581b", addBos: true)));
        Assert.Equal(" ", tokenizer.Decode(tokenizer.Encode("\u2581", addBos: true)));
    }

    [Theory]
    [MemberData(nameof(Vocabularies))]
    public void StreamedDeltasOfEncodedTextConcatenateToTheText(string vocabulary)
    {
        var tokenizer = ByName(vocabulary);
        Check.One(Quick(), Prop.ForAll(UnicodeText(), text =>
        {
            if (ContainsSpecialToken(tokenizer, text) || HasSpaceSymbol(text)) return true;
            var deltas = Stream(tokenizer, tokenizer.Encode(text, addBos: true));
            // No delta may split a character, and valid text never needs a replacement character.
            Assert.All(deltas, d => Assert.True(IsWellFormed(d) && !d.Contains('\uFFFD'), $"delta \"{Escape(d)}\""));
            return string.Concat(deltas) == text;
        }));
    }

    [Theory]
    [MemberData(nameof(Vocabularies))]
    public void StreamedDeltasOfAnyIdsConcatenateToTheFullDecode(string vocabulary)
    {
        var tokenizer = ByName(vocabulary);
        // Byte pieces in random order make broken and unfinished UTF-8; control ids test the skip rule.
        var bytePieces = Enumerable.Range(0, 256).Select(b => tokenizer.TokenToId($"<0x{b:X2}>")!.Value).ToArray();
        var id = Gen.Frequency(
            (4, Gen.Elements(bytePieces)),
            (4, Gen.Choose(0, tokenizer.VocabSize - 1)),
            (1, Gen.Elements(tokenizer.SpecialTokens.Values.ToArray())));
        var sequences = Arb.From(Gen.ListOf(id).Select(ids => ids.ToArray()));
        Check.One(Quick(), Prop.ForAll(sequences, Arb.From(Gen.Elements(true, false)), (ids, skip) =>
        {
            var deltas = Stream(tokenizer, ids, skip);
            Assert.All(deltas, d => Assert.True(IsWellFormed(d), $"delta \"{Escape(d)}\" splits a character"));
            var full = tokenizer.Decode(ids, skip);
            return Expect(string.Concat(deltas) == full, $"{Show(ids)}: streamed \"{Escape(string.Concat(deltas))}\" vs \"{Escape(full)}\"");
        }));
    }

    [Fact]
    public void StreamingHoldsAByteFallbackCharacterUntilItIsComplete()
    {
        var tokenizer = Small;
        var ids = tokenizer.Encode("héllo", addBos: false);
        Assert.Equal(["▁", "h", "<0xC3>", "<0xA9>", "l", "l", "o"], ids.Select(tokenizer.IdToToken));

        var deltas = Stream(tokenizer, ids);
        // The dummy-prefix space is dropped; é appears only with its second byte.
        Assert.Equal(["", "h", "", "é", "l", "l", "o", ""], deltas);
    }

    [Fact]
    public void UnfinishedOrBrokenBytesDecodeAsOneReplacementCharacterPerByte()
    {
        var tokenizer = Small;
        int Byte(int b) => tokenizer.TokenToId($"<0x{b:X2}>")!.Value;
        var a = tokenizer.TokenToId("a")!.Value;
        // E2 82 then a normal piece: SentencePiece's DecodeUTF8 rejects each byte on its own.
        Assert.Equal("\uFFFD\uFFFDa", tokenizer.Decode([Byte(0xE2), Byte(0x82), a]));
        // An overlong encoding of '/' and a lone continuation byte.
        Assert.Equal("\uFFFD\uFFFD\uFFFD", tokenizer.Decode([Byte(0xC0), Byte(0xAF), Byte(0x80)]));
        // A stream that ends inside a character flushes it as replacement characters.
        Assert.Equal(["", "", "\uFFFD\uFFFD"], Stream(tokenizer, [Byte(0xF0), Byte(0x9F)]));
    }

    [Fact]
    public void DummyPrefixIsDroppedOnceAtTheStartOfTheDecodedText()
    {
        var tokenizer = Small;
        Assert.Equal("  leading", tokenizer.Decode(tokenizer.Encode("  leading", addBos: true)));
        Assert.Equal(" x", tokenizer.Decode(tokenizer.Encode(" x", addBos: false)));
    }

    [Fact]
    public void SpecialTokensAreSkippedOrShownOnRequest()
    {
        var tokenizer = Small;
        var ids = tokenizer.Encode("a cat", addBos: true).Append(tokenizer.EosId!.Value).ToArray();
        Assert.Equal(1, ids[0]);
        Assert.Equal("a cat", tokenizer.Decode(ids));
        // Shown special tokens are text: after "<s>" the dummy-prefix space is no longer at the start, so it stays.
        Assert.Equal("<s> a cat</s>", tokenizer.Decode(ids, skipSpecialTokens: false));
    }

    [Fact]
    public void SpecialTokensWrittenInTextBecomeSingleIdsOnlyWhenAsked()
    {
        var tokenizer = Small;
        var ids = tokenizer.Encode("hi</s>", addBos: false, parseSpecialTokens: true);
        Assert.Equal(tokenizer.EosId, ids[^1]);
        Assert.Equal(tokenizer.Encode("hi", addBos: false), ids[..^1]);

        var literal = tokenizer.Encode("hi</s>", addBos: false);
        Assert.DoesNotContain(tokenizer.EosId!.Value, literal);
        Assert.Equal("hi</s>", tokenizer.Decode(literal, skipSpecialTokens: false));
    }

    [Fact]
    public void UserDefinedPieceIsMatchedWhole()
    {
        var tokenizer = Small;
        var image = tokenizer.TokenToId("<image>");
        Assert.NotNull(image);
        Assert.Contains(image!.Value, tokenizer.Encode("USER: <image>\nhi", addBos: false));
        Assert.DoesNotContain(image.Value, tokenizer.Encode("USER: <imag>", addBos: false));
    }

    [Fact]
    public void ModelIdsComeFromTheModelWhenTheFolderHasNoConfig()
    {
        var tokenizer = Mistral;
        Assert.True(tokenizer.IsSentencePiece);
        Assert.Equal((1, 2, 0), (tokenizer.BosId, tokenizer.EosId, tokenizer.UnkId));
        Assert.Null(tokenizer.PadId);
        Assert.Equal(32000, tokenizer.VocabSize);
        Assert.True(tokenizer.AddsBosByDefault);
        Assert.Equal([2], tokenizer.EosIds);
        Assert.Equal("▁the", tokenizer.IdToToken(tokenizer.TokenToId("▁the")!.Value));
        Assert.Null(tokenizer.TokenToId("no such piece"));
        Assert.Null(tokenizer.IdToToken(32000));
        Assert.Throws<ArgumentOutOfRangeException>(() => tokenizer.Decode([ImageSlotTokenizer.ImageTokenIndex]));
    }

    [Fact]
    public void ConfigFilesOverrideTheModelAndNullMeansNone()
    {
        using var folder = SentencePieceFolder.WithConfig("""{"pad_token": "<unk>", "eos_token": null, "add_bos_token": false}""");
        File.WriteAllText(Path.Combine(folder.Path, "config.json"), """{"eos_token_id": 2, "pad_token_id": 1}""");
        var tokenizer = MiniGeminiTokenizer.FromFolder(folder.Path);
        Assert.Equal(0, tokenizer.PadId);
        Assert.Null(tokenizer.EosId);
        Assert.Equal([2], tokenizer.EosIds);
        Assert.False(tokenizer.AddsBosByDefault);
        Assert.Equal(tokenizer.Encode("hi", addBos: false), tokenizer.Encode("hi"));
    }

    [Fact]
    public void MgmFolderTakesPadFromConfigJson()
    {
        var tokenizer = MiniGeminiTokenizer.FromFolder(Path.Combine(Parity.FixtureCatalog.Bundled("mgm-tiny"), "model"));
        Assert.Equal((1, 2, 0), (tokenizer.BosId, tokenizer.EosId, tokenizer.PadId));
    }

    [Fact]
    public void LongRepetitiveInputEncodesAndRoundTrips()
    {
        // A repeated character is where naive BPE implementations diverge from SentencePiece or go quadratic.
        var text = string.Concat(Enumerable.Repeat("aaaa bbbb ==== \n", 2000));
        var ids = Mistral.Encode(text, addBos: false);
        Assert.Equal(text, Mistral.Decode(ids));
    }
}
