using System.IO.Compression;
using System.Text;
using MiniGemini.Checkpoints;
using MiniGemini.Modeling;
using MiniGemini.Tests.Parity;
using Xunit;

namespace MiniGemini.Tests.Checkpoints;

public sealed class TorchPickleCheckpointTests : IDisposable
{
    readonly string _dir = Directory.CreateTempSubdirectory("mgm-pkl-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    string Zip(string name, byte[] pickle, params (string Entry, byte[] Data)[] extra)
    {
        var path = Path.Combine(_dir, name);
        using var zip = ZipFile.Open(path, ZipArchiveMode.Create);
        void Add(string entryName, byte[] data)
        {
            using var s = zip.CreateEntry(entryName, CompressionLevel.NoCompression).Open();
            s.Write(data);
        }
        Add("archive/data.pkl", pickle);
        Add("archive/byteorder", Encoding.ASCII.GetBytes("little"));
        foreach (var (entry, data) in extra) Add(entry, data);
        return path;
    }

    static byte[] Payload(string module, string name, string argument)
    {
        var bytes = new List<byte> { 0x80, 0x02, (byte)'c' };
        bytes.AddRange(Encoding.ASCII.GetBytes($"{module}\n{name}\n"));
        bytes.Add((byte)'X');
        bytes.AddRange(BitConverter.GetBytes(argument.Length));
        bytes.AddRange(Encoding.ASCII.GetBytes(argument));
        bytes.AddRange([0x85, (byte)'R', (byte)'.']);
        return bytes.ToArray();
    }

    [Fact]
    public void Reads_the_open_clip_bin_and_skips_nothing_silently()
    {
        using var bin = TorchPickleCheckpoint.Open(Path.Combine(FixtureCatalog.Bundled("convnext-tiny"), "open_clip_pytorch_model.bin"));
        Assert.Contains("visual.trunk.stem.0.weight", bin.Keys);
        Assert.Contains("logit_scale", bin.Keys);
        Assert.True(bin.TryGetInfo("visual.trunk.stem.0.weight", out var info));
        Assert.Equal(new long[] { 16, 3, 4, 4 }, info.Shape);
        using var scalar = bin.Load("logit_scale");
        Assert.Empty(scalar.shape);
        Assert.Equal(4.6f, scalar.item<float>(), 5);
    }

    /// <summary>
    /// ReadInto reads a tensor that fills its storage straight into the destination, converting through the staging
    /// buffer (here of 100 bytes, so in many parts), and gives what Load and copy_ give; so does a view into a larger
    /// tensor, which takes the Load path, and it receives its rows and nothing else.
    /// </summary>
    [Theory]
    [InlineData(TorchSharp.torch.ScalarType.Float32)]
    [InlineData(TorchSharp.torch.ScalarType.BFloat16)]
    [InlineData(TorchSharp.torch.ScalarType.Float64)]
    public void ReadInto_fills_the_destination_as_Load_and_copy_would(TorchSharp.torch.ScalarType wanted)
    {
        using var scope = TorchSharp.torch.NewDisposeScope();
        using var bin = TorchPickleCheckpoint.Open(Path.Combine(FixtureCatalog.Bundled("convnext-tiny"), "open_clip_pytorch_model.bin"), stagingBytes: 100);
        int read = 0;
        foreach (var key in bin.Keys)
        {
            Assert.True(bin.TryGetInfo(key, out var info));
            if (!TorchSharp.torch.is_floating_point(TorchSharp.torch.empty(0, info.DType))) continue;
            var expected = bin.Load(key).to(wanted);
            var destination = TorchSharp.torch.full(info.Shape, double.NaN, dtype: wanted);
            bin.ReadInto(key, destination);
            Assert.True(expected.Equals(destination), key);
            read++;
        }
        Assert.True(read > 50, $"{read} tensors read");

        const string name = "visual.trunk.stages.0.blocks.0.mlp.fc1.weight";
        Assert.True(bin.TryGetInfo(name, out var stored));
        var (rows, columns) = (stored.Shape[0], stored.Shape[1]);
        var joint = TorchSharp.torch.zeros([rows + 3, columns], dtype: wanted);
        bin.ReadInto(name, joint.narrow(0, 1, rows));
        Assert.True(bin.Load(name).to(wanted).Equals(joint.narrow(0, 1, rows)), name);
        Assert.Equal(0, joint.narrow(0, 0, 1).count_nonzero().item<long>() + joint.narrow(0, rows + 1, 2).count_nonzero().item<long>());
    }

    [Fact]
    public void A_pickle_that_would_run_code_is_refused()
    {
        // PROTO 2; GLOBAL os.system; BINUNICODE 'echo pwned'; TUPLE1; REDUCE; STOP -- the classic payload
        var payload = Payload("os", "system", "echo pwned");
        var path = Zip("evil.bin", payload);
        var e = Assert.Throws<ModelLoadException>(() => TorchPickleCheckpoint.Open(path));
        Assert.Contains("os.system", e.Message);
        Assert.Contains("evil.bin", e.Message);
    }

    [Fact]
    public void Builtins_eval_is_refused()
    {
        var payload = Payload("builtins", "eval", "1");
        var e = Assert.Throws<ModelLoadException>(() => TorchPickleCheckpoint.Open(Zip("eval.bin", payload)));
        Assert.Contains("builtins.eval", e.Message);
    }

    [Fact]
    public void Subprocess_is_refused_without_running_it()
    {
        var marker = Path.Combine(_dir, "ran");
        var payload = Payload("subprocess", "check_call", $"touch {marker}");
        var e = Assert.Throws<ModelLoadException>(() => TorchPickleCheckpoint.Open(Zip("subprocess.bin", payload)));
        Assert.Contains("subprocess.check_call", e.Message);
        Assert.Contains("subprocess.bin", e.Message);
        Assert.False(File.Exists(marker), "the payload must never run");
    }

    [Fact]
    public void Non_zip_file_is_a_typed_error()
    {
        var path = Path.Combine(_dir, "legacy.bin");
        File.WriteAllBytes(path, [0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19]);
        var e = Assert.Throws<ModelLoadException>(() => TorchPickleCheckpoint.Open(path));
        Assert.Contains("zip", e.Message);
    }

    [Fact]
    public void Truncated_pickle_is_a_typed_error()
    {
        var original = Path.Combine(FixtureCatalog.Bundled("convnext-tiny"), "open_clip_pytorch_model.bin");
        byte[] pickle;
        using (var zip = ZipFile.OpenRead(original))
        using (var s = zip.Entries.First(e => e.FullName.EndsWith("data.pkl")).Open())
        using (var ms = new MemoryStream())
        {
            s.CopyTo(ms);
            pickle = ms.ToArray();
        }
        var path = Zip("cut.bin", pickle[..(pickle.Length / 2)]);
        Assert.Throws<ModelLoadException>(() => TorchPickleCheckpoint.Open(path));
    }

    [Fact]
    public void A_compressed_entry_that_expands_like_a_zip_bomb_is_refused_before_it_is_read()
    {
        var path = Path.Combine(_dir, "bomb.bin");
        using (var zip = ZipFile.Open(path, ZipArchiveMode.Create))
        using (var s = zip.CreateEntry("archive/data.pkl", CompressionLevel.SmallestSize).Open())
            s.Write(new byte[16 << 20]); // 16 MiB of zeros: about 16 KB stored
        var e = Assert.Throws<ModelLoadException>(() => TorchPickleCheckpoint.Open(path));
        Assert.Contains(path, e.Message);
        Assert.Contains("archive/data.pkl", e.Message);
        Assert.Contains("uncompressed", e.Message);
    }

    [Fact]
    public void A_storage_entry_of_the_wrong_size_names_the_tensor_and_both_sizes()
    {
        var copy = Path.Combine(_dir, "short.bin");
        File.Copy(Path.Combine(FixtureCatalog.Bundled("convnext-tiny"), "open_clip_pytorch_model.bin"), copy);
        using (var zip = ZipFile.Open(copy, ZipArchiveMode.Update))
        {
            var entry = zip.Entries.First(e => e.FullName.EndsWith("/data/0"));
            var name = entry.FullName;
            entry.Delete();
            using var s = zip.CreateEntry(name, CompressionLevel.NoCompression).Open();
            s.Write(new byte[4]);
        }
        using var bin = TorchPickleCheckpoint.Open(copy);
        var failure = Assert.Single(bin.Keys.Select(k => Record.Exception(() => bin.Load(k).Dispose())).OfType<ModelLoadException>());
        Assert.Contains("data/0", failure.Message);
        Assert.Contains("holds 4 bytes, expected", failure.Message);
        Assert.NotNull(failure.TensorName);
    }

    [Fact]
    public void Missing_storage_entry_names_the_tensor()
    {
        var original = Path.Combine(FixtureCatalog.Bundled("convnext-tiny"), "open_clip_pytorch_model.bin");
        var copy = Path.Combine(_dir, "nostorage.bin");
        File.Copy(original, copy);
        using (var zip = ZipFile.Open(copy, ZipArchiveMode.Update))
            zip.Entries.First(e => e.FullName.EndsWith("/data/0")).Delete();
        using var bin = TorchPickleCheckpoint.Open(copy);
        var failures = bin.Keys.Select(k => Record.Exception(() => bin.Load(k).Dispose())).OfType<ModelLoadException>().ToList();
        var failure = Assert.Single(failures);
        Assert.Contains("data/0", failure.Message);
        Assert.NotNull(failure.TensorName);
    }
}
