using MiniGemini.Text;
using MiniGemini.Text.SentencePiece;
using Xunit;
using static MiniGemini.Tests.Text.SentencePieceModelWriter;

namespace MiniGemini.Tests.Text;

/// <summary>SentencePiece BPE rules on hand-written models; expected pieces follow bpe_model.cc step by step.</summary>
public class SentencePieceAlgorithmTests
{
    static SentencePieceBpe Load(byte[] model, bool legacy = true) => new(SentencePieceModel.Parse(model, "test.model"), legacy);

    static string[] Pieces(SentencePieceBpe bpe, string text)
    {
        var ids = new List<int>();
        bpe.Encode(text, isFirstSegment: true, ids);
        return ids.Select(id => bpe.IdToToken(id)!).ToArray();
    }

    [Fact]
    public void EqualScoresMergeTheLeftmostPairFirst()
    {
        var bpe = Load(WithSpecials(("▁", 0, Normal), ("a", 0, Normal), ("b", 0, Normal), ("ab", -1, Normal), ("ba", -1, Normal)));
        // ▁ a b a: "ab" (left 1) and "ba" (left 2) score the same; the leftmost wins and blocks "ba".
        Assert.Equal(["▁", "ab", "a"], Pieces(bpe, "aba"));
    }

    [Fact]
    public void HigherScoreMergesFirstWhereverItIs()
    {
        var bpe = Load(WithSpecials(("▁", 0, Normal), ("a", 0, Normal), ("b", 0, Normal), ("ab", -2, Normal), ("ba", -1, Normal)));
        Assert.Equal(["▁", "a", "ba"], Pieces(bpe, "aba"));
    }

    [Fact]
    public void UnusedPiecesTakePartInMergesButAreSplitAgainOnOutput()
    {
        var bpe = Load(WithSpecials(("▁", 0, Normal), ("a", 0, Normal), ("b", 0, Normal), ("c", 0, Normal), ("ab", 0, Unused), ("abc", -1, Normal)));
        Assert.Equal(["▁", "abc"], Pieces(bpe, "abc"));
        Assert.Equal(["▁", "a", "b"], Pieces(bpe, "ab"));
    }

    [Fact]
    public void WithoutByteFallbackARunOfUnknownCharactersIsOneUnknownId()
    {
        var bpe = Load(WithSpecials(("▁", 0, Normal), ("a", 0, Normal), ("b", 0, Normal)));
        Assert.Equal(["▁", "a", "<unk>", "b"], Pieces(bpe, "axyzb"));
        Assert.Equal(["▁", "<unk>", "a", "<unk>"], Pieces(bpe, "xay"));
    }

    [Fact]
    public void UserDefinedPiecesMatchLongestFirstAndNeverMerge()
    {
        var bpe = Load(WithSpecials(("▁", 0, Normal), ("m", 0, Normal), (">", 0, Normal), ("m>", -1, Normal),
            ("<i>", 0, UserDefined), ("<im>", 0, UserDefined), ("▁<", 5, Normal), ("<", 0, Normal)));
        Assert.Equal(["▁", "<im>"], Pieces(bpe, "<im>"));
        Assert.Equal(["▁", "<i>", "m>"], Pieces(bpe, "<i>m>"));
        // A plain "<" still merges with the space, a user-defined one does not.
        Assert.Equal(["▁<", "m"], Pieces(bpe, "<m"));
    }

    [Fact]
    public void RemoveExtraWhitespacesCollapsesAndTrimsSpaces()
    {
        var model = SentencePieceModel.Parse(
            Build([("<unk>", 0, Unknown), ("▁", 0, Normal), ("a", 0, Normal), ("b", 0, Normal)], removeExtraWhitespaces: true), "test.model");
        var bpe = new SentencePieceBpe(model);
        Assert.Equal("▁a▁b", bpe.Normalize("  a   b  ", addDummyPrefix: true));
        Assert.Equal(["▁", "a", "▁", "b"], Pieces(bpe, "  a   b  "));
        Assert.Equal("", bpe.Normalize("    ", addDummyPrefix: true));
    }

    [Fact]
    public void NoDummyPrefixWhenTheModelSaysSo()
    {
        var model = SentencePieceModel.Parse(Build([("<unk>", 0, Unknown), ("▁", 0, Normal), ("a", 0, Normal)], addDummyPrefix: false), "test.model");
        Assert.Equal("a▁a", new SentencePieceBpe(model).Normalize("a a", addDummyPrefix: true));
    }

    [Fact]
    public void NonLegacyTokenizersAddTheDummyPrefixOnlyAtTheStart()
    {
        const string text = "hi</s>there";
        using var legacyFolder = SentencePieceFolder.WithConfig("{}");
        using var modernFolder = SentencePieceFolder.WithConfig("""{"legacy": false}""");
        var legacy = MiniGeminiTokenizer.FromFolder(legacyFolder.Path);
        var modern = MiniGeminiTokenizer.FromFolder(modernFolder.Path);
        var small = TextTestData.Small;

        Assert.Equal([.. small.Encode("hi", addBos: false), 2, .. small.Encode("there", addBos: false)], legacy.Encode(text, addBos: false, parseSpecialTokens: true));
        var bare = new List<int>();
        new SentencePieceBpe(SentencePieceModel.Load(Path.Combine(legacyFolder.Path, "tokenizer.model"))).EncodeWithPrefix("there", addDummyPrefix: false, bare);
        Assert.Equal([.. small.Encode("hi", addBos: false), 2, .. bare], modern.Encode(text, addBos: false, parseSpecialTokens: true));
        Assert.Equal([2, .. bare], modern.Encode("</s>there", addBos: false, parseSpecialTokens: true));
    }

    [Fact]
    public void AddedTokenStripFlagsRemoveNeighbouringWhitespace()
    {
        using var folder = SentencePieceFolder.WithConfig("""{"added_tokens_decoder": {"2": {"content": "</s>", "rstrip": true, "lstrip": true, "special": true}}}""");
        var tokenizer = MiniGeminiTokenizer.FromFolder(folder.Path);
        Assert.Equal([.. TextTestData.Small.Encode("a", addBos: false), 2, .. TextTestData.Small.Encode("b", addBos: false)],
            tokenizer.Encode("a  </s>  b", addBos: false, parseSpecialTokens: true));
    }

    [Fact]
    public void AddedTokensBeyondTheModelExtendTheVocabulary()
    {
        using var folder = SentencePieceFolder.WithConfig(
            """{"pad_token": "<pad>", "added_tokens_decoder": {"400": {"content": "<pad>", "special": true}, "401": {"content": "<note>", "special": false}}}""");
        var tokenizer = MiniGeminiTokenizer.FromFolder(folder.Path);
        Assert.Equal(402, tokenizer.VocabSize);
        Assert.Equal(400, tokenizer.PadId);
        Assert.Equal([401], tokenizer.Encode("<note>", addBos: false));
        // A non-special added token is kept by decoding; a special one is skipped.
        Assert.Equal("a<note>", tokenizer.Decode([.. tokenizer.Encode("a", addBos: false), 401, 400]));
    }

    [Theory]
    [InlineData("tokenizer-sp")]
    [InlineData("tokenizer-mistral-real")]
    public void EncodingWordByWordGivesTheWholeTextResult(string fixture)
    {
        var model = SentencePieceModel.Load(Path.Combine(Parity.FixtureCatalog.Bundled(fixture), "tokenizer.model"));
        Assert.True(model.MergesStayWithinWords);
        var byWord = new SentencePieceBpe(model);
        var whole = new SentencePieceBpe(model) { SplitAtWords = false };
        FsCheck.Check.One(TextTestData.Quick(), FsCheck.Fluent.Prop.ForAll(TextTestData.UnicodeText(), text =>
        {
            List<int> a = [], b = [];
            byWord.Encode(text, isFirstSegment: true, a);
            whole.Encode(text, isFirstSegment: true, b);
            return TextTestData.Expect(a.SequenceEqual(b), $"\"{TextTestData.Escape(text)}\": {TextTestData.Show(a)} vs {TextTestData.Show(b)}");
        }));
    }

    [Fact]
    public void APieceWithAnInnerSpaceTurnsWordSplittingOff()
    {
        var model = SentencePieceModel.Parse(WithSpecials(("▁", 0, Normal), ("a", 0, Normal), ("a▁", 1, Normal)), "test.model");
        Assert.False(model.MergesStayWithinWords);
        Assert.Equal(["▁", "a▁", "a"], Pieces(new SentencePieceBpe(model), "a a"));
    }
}
