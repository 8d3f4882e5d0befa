using MiniGemini.Tests.Parity;
using MiniGemini.Text;
using Xunit;
using static MiniGemini.Tests.Text.SentencePieceModelWriter;

namespace MiniGemini.Tests.Text;

/// <summary>Missing, corrupt and unsupported tokenizer files raise <see cref="ModelLoadException"/> naming the file.</summary>
public sealed class TokenizerErrorTests : IDisposable
{
    readonly string _dir = Directory.CreateTempSubdirectory("mgm-tok-err-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    string Write(string name, byte[] content)
    {
        var path = Path.Combine(_dir, name);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        File.WriteAllBytes(path, content);
        return path;
    }

    ModelLoadException Fails() => Assert.Throws<ModelLoadException>(() => MiniGeminiTokenizer.FromFolder(_dir));

    static byte[] SmallModel() => File.ReadAllBytes(Path.Combine(FixtureCatalog.Bundled("tokenizer-sp"), "tokenizer.model"));

    [Fact]
    public void EmptyFolder()
    {
        var e = Fails();
        Assert.Contains("tokenizer.model", e.Message);
        Assert.Contains(_dir, e.Message);
    }

    [Fact]
    public void MissingFolder()
    {
        var missing = Path.Combine(_dir, "nope");
        var e = Assert.Throws<ModelLoadException>(() => MiniGeminiTokenizer.FromFolder(missing));
        Assert.Equal(missing, e.FilePath);
    }

    [Theory]
    [InlineData(1000)]
    [InlineData(17)]
    [InlineData(3)]
    public void TruncatedSentencePieceModel(int length)
    {
        var file = Write("tokenizer.model", SmallModel()[..length]);
        var e = Fails();
        Assert.Equal(file, e.FilePath);
        Assert.Contains(file, e.Message);
    }

    [Fact]
    public void GarbageSentencePieceModel()
    {
        var file = Write("tokenizer.model", Enumerable.Repeat((byte)0xFF, 64).ToArray());
        Assert.Equal(file, Fails().FilePath);
    }

    [Fact]
    public void UnigramModelIsRejectedByName()
    {
        Write("tokenizer.model", Build([("<unk>", 0, Unknown), ("a", -1, Normal)], modelType: 1));
        Assert.Contains("UNIGRAM", Fails().Message);
    }

    [Fact]
    public void PrecompiledNormalizerIsRejected()
    {
        Write("tokenizer.model", Build([("<unk>", 0, Unknown), ("a", -1, Normal)], normalizerName: "nmt_nfkc", charsMap: [1, 2, 3, 4, 5]));
        Assert.Contains("nmt_nfkc", Fails().Message);
    }

    [Fact]
    public void ByteFallbackWithoutAllBytePieces()
    {
        Write("tokenizer.model", Build([("<unk>", 0, Unknown), ("<0x41>", 0, BytePiece)], byteFallback: true));
        Assert.Contains("256", Fails().Message);
    }

    [Fact]
    public void ModelWithoutUnknownPiece()
    {
        Write("tokenizer.model", Build([("a", 0, Normal)]));
        Assert.Contains("unknown", Fails().Message);
    }

    [Fact]
    public void DuplicatePiece()
    {
        Write("tokenizer.model", Build([("<unk>", 0, Unknown), ("a", 0, Normal), ("a", -1, Normal)]));
        Assert.Contains("'a'", Fails().Message);
    }

    [Fact]
    public void MalformedTokenizerConfig()
    {
        Write("tokenizer.model", SmallModel());
        var config = Write("tokenizer_config.json", "{\"bos_token\": "u8.ToArray());
        var e = Fails();
        Assert.Equal(config, e.FilePath);
    }

    [Fact]
    public void SpecialTokenMissingFromTheVocabulary()
    {
        Write("tokenizer.model", SmallModel());
        var config = Write("tokenizer_config.json", """{"pad_token": "<pad>"}"""u8.ToArray());
        var e = Fails();
        Assert.Equal(config, e.FilePath);
        Assert.Contains("pad_token", e.Message);
        Assert.Contains("<pad>", e.Message);
    }

    [Fact]
    public void TiktokenFileWithoutSpecialTokens()
    {
        var file = Write("original/tokenizer.model", System.Text.Encoding.ASCII.GetBytes(SyntheticByteLevelFolder.TiktokenFile(SyntheticByteLevelFolder.Vocab)));
        var e = Fails();
        Assert.Equal(file, e.FilePath);
        Assert.Contains("special tokens", e.Message);
    }

    [Fact]
    public void TiktokenFileWithABadLine()
    {
        var file = Write("tokenizer.model", "IQ== 0\nIg== 1\nnot-base64!! 2\n"u8.ToArray());
        Write("tokenizer_config.json", """{"added_tokens_decoder": {"3": {"content": "<|x|>", "special": true}}}"""u8.ToArray());
        var e = Fails();
        Assert.Equal(file, e.FilePath);
        Assert.Contains("line 3", e.Message);
    }

    [Fact]
    public void SentencePieceStyleTokenizerJsonAlone()
    {
        var file = Write("tokenizer.json", """
            {"model": {"type": "BPE", "vocab": {"a": 0}, "merges": []},
             "pre_tokenizer": {"type": "Metaspace", "replacement": "▁"}, "decoder": {"type": "Metaspace"}}
            """u8.ToArray());
        var e = Fails();
        Assert.Equal(file, e.FilePath);
        Assert.Contains("tokenizer.model", e.Message);
    }

    [Fact]
    public void ConfigIdOutsideTheVocabulary()
    {
        Write("tokenizer.model", SmallModel());
        Write("generation_config.json", """{"eos_token_id": [2, 99999]}"""u8.ToArray());
        var e = Fails();
        Assert.Contains("eos_token_id 99999", e.Message);
    }
}
