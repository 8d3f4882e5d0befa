using System.Text.RegularExpressions;
using Microsoft.ML.Tokenizers;
using MiniGemini.Text;
using MiniGemini.Text.SentencePiece;
using Xunit;
using Writer = MiniGemini.Text.SentencePiece.SentencePieceModelWriter;

namespace MiniGemini.Tests.Text;

/// <summary>
/// A word-level <c>tokenizer.model</c> written by <see cref="Writer"/>: it loads from a folder with
/// <see cref="MiniGeminiTokenizer.FromFolder"/>, every word of its corpus is one piece, text round-trips, and
/// Microsoft.ML.Tokenizers' <c>LlamaTokenizer</c> reads the same file to the same ids.
/// </summary>
public sealed class SentencePieceWriterTests : IDisposable
{
    const string Answer = "There are 2 shapes. The top left has a red circle with the digit 4.";

    static readonly string[] Corpus =
    [
        "A chat between a curious user and an artificial intelligence assistant. The assistant gives helpful, detailed, and polite answers to the user's questions. USER: <image>\nWhat digit is at the top left? ASSISTANT: " + Answer + "</s>",
        "Draw a red circle with the digit 4 at the top left. <GEN>",
        "<h>a red circle with the digit 4 at the top left</h>",
    ];

    /// <summary>Texts outside the corpus: unseen words and characters, odd spacing, special tokens at the end.</summary>
    static readonly string[] Unseen =
    [
        "zebra",
        "a zebra at the top left",
        "Zebras grazing: the top-left one is striped!",
        "naïve café, 漢字 and 🙂 are not in the corpus",
        "  two  spaces,\ttabs\tand a newline\n",
        "<h>a zebra</h> <GEN>",
        "user's users' userss <h> h> <0x41> <sup>",
    ];

    readonly string _folder = Directory.CreateTempSubdirectory("mgm-sp-writer-").FullName;
    readonly string _modelFile;
    readonly MiniGeminiTokenizer _tokenizer;

    public SentencePieceWriterTests()
    {
        _modelFile = Path.Combine(_folder, "tokenizer.model");
        Writer.WriteWordLevel(_modelFile, Corpus);
        _tokenizer = MiniGeminiTokenizer.FromFolder(_folder);
    }

    public void Dispose() => Directory.Delete(_folder, recursive: true);

    string[] Pieces(string text) => _tokenizer.Encode(text, addBos: false).Select(id => _tokenizer.IdToToken(id)!).ToArray();

    [Fact]
    public void TheFolderLoadsAsALlamaStyleSentencePieceTokenizer()
    {
        Assert.Equal(["tokenizer.model"], Directory.GetFiles(_folder).Select(Path.GetFileName));
        Assert.True(_tokenizer.IsSentencePiece);
        Assert.Equal(0, _tokenizer.UnkId);
        Assert.Equal(1, _tokenizer.BosId);
        Assert.Equal(2, _tokenizer.EosId);
        Assert.Null(_tokenizer.PadId);
        Assert.True(_tokenizer.AddsBosByDefault);
        Assert.Equal(["<unk>", "<s>", "</s>"], Enumerable.Range(0, 3).Select(_tokenizer.IdToToken));
        for (var b = 0; b < 256; b++) Assert.Equal($"<0x{b:X2}>", _tokenizer.IdToToken(Writer.FirstByteId + b));
        Assert.Equal(["</s>", "<s>", "<unk>"], _tokenizer.SpecialTokens.Keys.Order(StringComparer.Ordinal));

        var model = SentencePieceModel.Load(_modelFile);
        Assert.True(model.ByteFallback);
        Assert.True(model.AddDummyPrefix);
        Assert.False(model.RemoveExtraWhitespaces);
        Assert.True(model.EscapeWhitespaces);
        Assert.Equal("identity", model.NormalizerName);
        Assert.True(model.MergesStayWithinWords);
        Assert.All(Enumerable.Range(Writer.FirstNormalId, model.Count - Writer.FirstNormalId), id => Assert.Equal(PieceType.Normal, model.Types[id]));
        // Distinct scores, best first, so that no two merges ever tie.
        var scores = model.Scores[Writer.FirstNormalId..];
        Assert.True(scores.Zip(scores.Skip(1)).All(p => p.First > p.Second));
        // A few hundred pieces besides the 3 special and 256 byte pieces.
        Assert.InRange(model.Count - Writer.FirstNormalId, 100, 400);
    }

    [Fact]
    public void EveryWordOfTheCorpusIsOnePiece()
    {
        var words = Corpus.SelectMany(WordLevelVocabulary.SplitAtSeparators)
            .SelectMany(part => Regex.Matches(part, @"[\p{L}\p{N}]+").Select(m => m.Value))
            .Where(w => w is not ("h" or "GEN" or "s")) // inside <h>, <GEN> and user's
            .Distinct()
            .ToArray();
        Assert.Contains("What", words);
        Assert.Contains("questions", words);
        foreach (var word in words)
        {
            var ids = _tokenizer.Encode(word, addBos: false);
            Assert.True(ids.Length == 1, $"\"{word}\" → [{string.Join(" ", Pieces(word))}]");
            Assert.Equal("▁" + word, _tokenizer.IdToToken(ids[0]));
        }
    }

    [Theory]
    [InlineData("shapes.", new[] { "▁shapes", "." })]
    [InlineData("questions.", new[] { "▁questions", "." })]
    [InlineData("helpful,", new[] { "▁helpful", "," })]
    [InlineData("USER:", new[] { "▁USER", ":" })]
    [InlineData("left?", new[] { "▁left", "?" })]
    [InlineData("user's", new[] { "▁user", "'s" })]
    [InlineData("<h>a", new[] { "▁<h>", "a" })]
    [InlineData("left</h>", new[] { "▁left", "</h>" })]
    [InlineData("<GEN>", new[] { "▁<GEN>" })]
    [InlineData("4.", new[] { "▁4", "." })]
    [InlineData("\nWhat", new[] { "▁\n", "What" })]
    public void PunctuationAndTagsAttachedToWordsAreTheirOwnPieces(string word, string[] pieces) =>
        Assert.Equal(pieces, Pieces(word));

    [Fact]
    public void CorpusTextsEncodeToTheIntendedPiecesAndDecodeExactly()
    {
        foreach (var text in Corpus)
        {
            var parts = WordLevelVocabulary.SplitAtSeparators(text).ToArray();
            foreach (var part in parts)
            {
                Assert.Equal(WordLevelVocabulary.IntendedPieces(part), Pieces(part));
                Assert.Equal(part, _tokenizer.Decode(_tokenizer.Encode(part, addBos: true)));
            }
            var ids = _tokenizer.Encode(text, addBos: false);
            Assert.DoesNotContain(ids, id => id < Writer.FirstNormalId && id != _tokenizer.EosId);
            Assert.Equal(text, _tokenizer.Decode(ids, skipSpecialTokens: false));
        }
    }

    [Fact]
    public void UnseenWordsAndCharactersRoundTripThroughCharactersAndBytes()
    {
        var zebra = Pieces("zebra");
        Assert.True(zebra.Length > 1);
        Assert.Contains("<0x7A>", zebra); // no 'z' in the corpus
        Assert.Contains("e", zebra);
        foreach (var text in Unseen)
            Assert.Equal(text, _tokenizer.Decode(_tokenizer.Encode(text, addBos: true)));
        Assert.Equal(["▁a", "▁", "<0x7A>", "e", "b", "r", "a", "▁at"], Pieces("a zebra at"));
    }

    [Fact]
    public void MicrosoftLlamaTokenizerReadsTheFileToTheSameIds()
    {
        using var stream = File.OpenRead(_modelFile);
        var specials = new Dictionary<string, int> { ["<unk>"] = 0, ["<s>"] = 1, ["</s>"] = 2 };
        var llama = LlamaTokenizer.Create(stream, addBeginOfSentence: true, addEndOfSentence: false, specialTokens: specials);
        Assert.Equal(1, llama.BeginningOfSentenceId);
        Assert.Equal(2, llama.EndOfSentenceId);
        Assert.Equal(0, llama.UnknownId);
        Assert.True(llama.ByteFallback);
        Assert.True(llama.AddDummyPrefix);
        Assert.Equal(_tokenizer.VocabSize, llama.Vocabulary.Count);

        // Special tokens only at the end: Microsoft's tokenizer gives no dummy prefix after one (legacy = false).
        var texts = Corpus.Concat(Unseen).Concat(Corpus.SelectMany(WordLevelVocabulary.SplitAtSeparators))
            .Concat(Corpus.SelectMany(t => t.Split([' ', '\n']))).Where(t => t.Length > 0);
        foreach (var text in texts)
        {
            var ours = _tokenizer.Encode(text, addBos: true, parseSpecialTokens: true);
            Assert.True(ours.SequenceEqual(llama.EncodeToIds(text)), $"\"{text}\": ours [{string.Join(" ", Pieces(text))}]");
            if (!text.Contains("</s>")) Assert.Equal(text, llama.Decode(ours));
        }
    }

    [Fact]
    public void EndOfSequenceInTemplatePromptsIsTheEosId()
    {
        var template = ConversationTemplate.VicunaV1;
        var prompt = template.BuildPrompt(
            [new ChatExchange("What digit is at the top left?", Answer, Images: 1), new ChatExchange("Draw a red circle with the digit 4 at the top left.")],
            generateImage: true);
        Assert.Contains("4.</s>USER: Draw", prompt);

        var ids = ImageSlotTokenizer.Tokenize(_tokenizer, prompt);
        Assert.Equal(_tokenizer.BosId, ids[0]);
        Assert.Equal(1, ImageSlotTokenizer.CountImages(ids));
        var eos = Array.IndexOf(ids, _tokenizer.EosId!.Value);
        Assert.Equal(eos, Array.LastIndexOf(ids, _tokenizer.EosId!.Value));
        Assert.Equal(["▁digit", "▁4", ".", "</s>", "▁USER", ":", "▁Draw"], ids[(eos - 3)..(eos + 4)].Select(id => _tokenizer.IdToToken(id)));
        Assert.Contains(_tokenizer.EosId!.Value, template.StopTokenIds(_tokenizer));
        // Every word of the prompt is in the vocabulary: no byte or unknown pieces.
        Assert.DoesNotContain(ids, id => id is >= 0 and < Writer.FirstNormalId && id != _tokenizer.BosId && id != _tokenizer.EosId);
        Assert.Equal(["▁<GEN>", "▁ASSISTANT", ":"], ids[^3..].Select(id => _tokenizer.IdToToken(id)));
    }

    [Fact]
    public void WritingIsDeterministicAndTheModelIsValidProtobuf()
    {
        var bytes = File.ReadAllBytes(_modelFile);
        Assert.Equal(bytes, Writer.SerializeWordLevel(Corpus));
        var parsed = SentencePieceModel.Parse(bytes, "memory");
        Assert.Equal(bytes.Length, Writer.Serialize(Writer.LlamaLayout(parsed.Pieces[Writer.FirstNormalId..])).Length);
    }

    [Fact]
    public void SerializeRejectsInvalidPieceLists()
    {
        Assert.Throws<ArgumentException>(() => Writer.Serialize([new("a", 0, PieceType.Normal)]));
        Assert.Throws<ArgumentException>(() => Writer.Serialize(Writer.LlamaLayout(["a", "a"])));
        Assert.Throws<ArgumentException>(() => Writer.Serialize([new("<unk>", 0, PieceType.Unknown), new("<0x00>", 0, PieceType.Byte)]));
        Assert.Throws<ArgumentException>(() => Writer.Serialize([new("<unk>", 0, PieceType.Unknown), new("", 0, PieceType.Normal)]));
        Assert.Throws<ArgumentException>(() => Writer.WriteWordLevel(Path.Combine(_folder, "empty.model"), ["", ""]));
    }
}
