using System.Buffers.Binary;
using System.Text;
using MiniGemini.Checkpoints;
using MiniGemini.Modeling;
using MiniGemini.Tests.Parity;
using Xunit;
using static TorchSharp.torch;

namespace MiniGemini.Tests.Checkpoints;

public sealed class SafetensorsFileTests : IDisposable
{
    readonly string _dir = Directory.CreateTempSubdirectory("mgm-st-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    static string ConvNeXt(string file) => Path.Combine(FixtureCatalog.Bundled("convnext-tiny"), file);

    [Fact]
    public void Pickle_and_safetensors_twins_hold_identical_tensors()
    {
        using var bin = TorchPickleCheckpoint.Open(ConvNeXt("open_clip_pytorch_model.bin"));
        using var st = SafetensorsFile.Open(ConvNeXt("open_clip_model.safetensors"));
        Assert.Equal(st.Keys.OrderBy(k => k), bin.Keys.OrderBy(k => k));
        Assert.True(st.Keys.Count > 60);
        foreach (var key in st.Keys)
        {
            using var scope = NewDisposeScope();
            Assert.True(st.TryGetInfo(key, out var a));
            Assert.True(bin.TryGetInfo(key, out var b));
            Assert.Equal(a.Shape, b.Shape);
            Assert.Equal(a.DType, b.DType);
            var x = st.Load(key);
            var y = bin.Load(key);
            Assert.True(x.Equals(y), $"{key} differs between the .bin and .safetensors files");
        }
    }

    [Fact]
    public void Streamed_and_memory_mapped_reads_agree()
    {
        using var mapped = SafetensorsFile.Open(ConvNeXt("open_clip_model.safetensors"));
        using var streamed = SafetensorsFile.Open(ConvNeXt("open_clip_model.safetensors"), TensorReadMode.Streamed);
        foreach (var key in mapped.Keys)
        {
            using var scope = NewDisposeScope();
            Assert.True(mapped.Load(key).Equals(streamed.Load(key)), key);
        }
    }

    [Theory]
    [InlineData(ScalarType.Float32)]
    [InlineData(ScalarType.Float16)]
    [InlineData(ScalarType.BFloat16)]
    [InlineData(ScalarType.Float64)]
    [InlineData(ScalarType.Int64)]
    [InlineData(ScalarType.Int32)]
    [InlineData(ScalarType.Int16)]
    [InlineData(ScalarType.Int8)]
    [InlineData(ScalarType.Byte)]
    [InlineData(ScalarType.Bool)]
    public void Every_supported_dtype_round_trips(ScalarType dtype)
    {
        using var scope = NewDisposeScope();
        var source = (randn(3, 5, 2) * 50).to(dtype);
        var path = Path.Combine(_dir, $"{dtype}.safetensors");
        SafetensorsWriter.Write(path, new Dictionary<string, Tensor> { ["t"] = source, ["empty"] = zeros(0, 4, dtype: dtype) });
        using var file = SafetensorsFile.Open(path);
        var back = file.Load("t");
        Assert.Equal(dtype, back.dtype);
        Assert.True(source.Equals(back));
        Assert.Equal(new long[] { 0, 4 }, file.Load("empty").shape);
    }

    [Fact]
    public void Sharded_folder_is_read_through_its_index()
    {
        using var scope = NewDisposeScope();
        var a = randn(4, 4);
        var b = arange(10, dtype: ScalarType.Int64);
        SafetensorsWriter.Write(Path.Combine(_dir, "model-00001-of-00002.safetensors"), new Dictionary<string, Tensor> { ["a"] = a });
        SafetensorsWriter.Write(Path.Combine(_dir, "model-00002-of-00002.safetensors"), new Dictionary<string, Tensor> { ["b"] = b });
        File.WriteAllText(Path.Combine(_dir, "model.safetensors.index.json"),
            """{"metadata": {"total_size": 96}, "weight_map": {"a": "model-00001-of-00002.safetensors", "b": "model-00002-of-00002.safetensors"}}""");
        using var source = Checkpoint.Open(_dir);
        Assert.IsType<ShardedCheckpoint>(source);
        Assert.Equal(["a", "b"], source.Keys.OrderBy(k => k));
        Assert.True(a.Equals(source.Load("a")));
        Assert.True(b.Equals(source.Load("b")));
    }

    [Fact]
    public void A_truncated_shard_fails_when_the_index_is_opened_naming_the_shard()
    {
        using (var scope = NewDisposeScope())
        {
            SafetensorsWriter.Write(Path.Combine(_dir, "model-00001-of-00002.safetensors"), new Dictionary<string, Tensor> { ["a"] = randn(4, 4) });
            SafetensorsWriter.Write(Path.Combine(_dir, "model-00002-of-00002.safetensors"), new Dictionary<string, Tensor> { ["b"] = randn(64, 64) });
        }
        var second = Path.Combine(_dir, "model-00002-of-00002.safetensors");
        File.WriteAllBytes(second, File.ReadAllBytes(second)[..^100]);
        File.WriteAllText(Path.Combine(_dir, "model.safetensors.index.json"),
            """{"weight_map": {"a": "model-00001-of-00002.safetensors", "b": "model-00002-of-00002.safetensors"}}""");
        var e = Assert.Throws<ModelLoadException>(() => Checkpoint.Open(_dir));
        Assert.Contains("model-00002-of-00002.safetensors", e.Message);
        Assert.Contains("truncated", e.Message);
        Assert.Equal("b", e.TensorName);
    }

    [Theory]
    [InlineData(ScalarType.BFloat16, ScalarType.BFloat16, 1L << 20)]  // straight into the destination's memory
    [InlineData(ScalarType.BFloat16, ScalarType.Float32, 1L << 20)]   // converted through the staging buffer
    [InlineData(ScalarType.BFloat16, ScalarType.Float32, 60)]         // ... in many pieces
    [InlineData(ScalarType.Float32, ScalarType.Float16, 100)]
    public void ReadInto_fills_the_destination_as_Load_and_copy_would(ScalarType stored, ScalarType wanted, long stagingBytes)
    {
        using var scope = NewDisposeScope();
        var source = randn(37, 11).to(stored);
        var path = Path.Combine(_dir, "w.safetensors");
        SafetensorsWriter.Write(path, new Dictionary<string, Tensor> { ["pad"] = randn(3), ["w"] = source });
        using var file = SafetensorsFile.Open(path);
        using var staging = new StagingBuffer(stagingBytes);
        var destination = full(37, 11, float.NaN, dtype: wanted);
        file.ReadInto("w", destination, staging);
        Assert.True(source.to(wanted).Equals(destination));
        // A view into a larger tensor (as a fused q/k/v part) receives its rows and nothing else.
        var joint = zeros(40, 11, dtype: wanted);
        file.ReadInto("w", joint.narrow(0, 2, 37), staging);
        Assert.True(source.to(wanted).Equals(joint.narrow(0, 2, 37)));
        Assert.Equal(0, joint.narrow(0, 0, 2).count_nonzero().item<long>() + joint.narrow(0, 39, 1).count_nonzero().item<long>());
    }

    [Fact]
    public void A_mapped_tensor_holds_the_stored_values_and_writes_to_it_stay_out_of_the_file()
    {
        var path = Path.Combine(_dir, "w.safetensors");
        using (var scope = NewDisposeScope())
            SafetensorsWriter.Write(path, new Dictionary<string, Tensor> { ["a"] = randn(3), ["w"] = randn(37, 11).to(ScalarType.BFloat16) });
        var before = File.ReadAllBytes(path);
        using (var file = SafetensorsFile.Open(path))
        {
            Assert.True(file.TryMap("w", out var mapped));
            using var loaded = file.Load("w");
            using (mapped)
            {
                Assert.Equal(ScalarType.BFloat16, mapped.dtype);
                Assert.True(loaded.Equals(mapped));
                file.Dispose(); // the view keeps its mapping
                Assert.True(loaded.Equals(mapped));
                mapped.add_(1);
                Assert.False(loaded.Equals(mapped));
            }
        }
        Assert.Equal(before, File.ReadAllBytes(path));
    }

    [Fact]
    public void ReadInto_refuses_another_shape_naming_the_tensor()
    {
        using var scope = NewDisposeScope();
        var path = Path.Combine(_dir, "w.safetensors");
        SafetensorsWriter.Write(path, new Dictionary<string, Tensor> { ["w"] = randn(4, 5) });
        using var file = SafetensorsFile.Open(path);
        var e = Assert.Throws<ModelLoadException>(() => file.ReadInto("w", zeros(5, 4)));
        Assert.Equal("w", e.TensorName);
        Assert.Contains("[4, 5]", e.Message);
    }

    [Fact]
    public void Index_naming_a_missing_shard_is_a_typed_error()
    {
        File.WriteAllText(Path.Combine(_dir, "model.safetensors.index.json"), """{"weight_map": {"w": "gone.safetensors"}}""");
        var e = Assert.Throws<ModelLoadException>(() => ShardedCheckpoint.Open(Path.Combine(_dir, "model.safetensors.index.json")));
        Assert.Contains("gone.safetensors", e.Message);
        Assert.Equal("w", e.TensorName);
    }

    [Fact]
    public void Index_cannot_point_outside_its_folder()
    {
        File.WriteAllText(Path.Combine(_dir, "model.safetensors.index.json"), """{"weight_map": {"w": "../escape.safetensors"}}""");
        var e = Assert.Throws<ModelLoadException>(() => ShardedCheckpoint.Open(Path.Combine(_dir, "model.safetensors.index.json")));
        Assert.Contains("outside", e.Message);
    }

    // ---- malformed files: each gives a typed error naming the file (and the tensor where there is one)

    string WriteRaw(string name, string headerJson, int dataBytes, ulong? lyingLength = null)
    {
        var header = Encoding.UTF8.GetBytes(headerJson);
        var bytes = new byte[8 + header.Length + dataBytes];
        BinaryPrimitives.WriteUInt64LittleEndian(bytes, lyingLength ?? (ulong)header.Length);
        header.CopyTo(bytes, 8);
        var path = Path.Combine(_dir, name);
        File.WriteAllBytes(path, bytes);
        return path;
    }

    [Fact]
    public void Truncated_file_names_the_tensor_that_runs_past_the_end()
    {
        using (var scope = NewDisposeScope())
            SafetensorsWriter.Write(Path.Combine(_dir, "full.safetensors"), new Dictionary<string, Tensor> { ["w"] = randn(16, 16) });
        var full = File.ReadAllBytes(Path.Combine(_dir, "full.safetensors"));
        var cut = Path.Combine(_dir, "cut.safetensors");
        File.WriteAllBytes(cut, full[..(full.Length / 2)]);
        var e = Assert.Throws<ModelLoadException>(() => SafetensorsFile.Open(cut));
        Assert.Equal("w", e.TensorName);
        Assert.Contains("cut.safetensors", e.Message);
        Assert.Contains("truncated", e.Message);
    }

    [Fact]
    public void Lying_offsets_are_refused()
    {
        var path = WriteRaw("lying.safetensors", """{"w":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]},"v":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}}""", 16);
        var e = Assert.Throws<ModelLoadException>(() => SafetensorsFile.Open(path));
        Assert.Contains("overlap", e.Message);
        Assert.Contains("lying.safetensors", e.Message);
    }

    [Fact]
    public void Bytes_between_tensors_are_refused_as_a_hole()
    {
        var path = WriteRaw("hole.safetensors", """{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"v":{"dtype":"F32","shape":[1],"data_offsets":[12,16]}}""", 16);
        var e = Assert.Throws<ModelLoadException>(() => SafetensorsFile.Open(path));
        Assert.Contains("bytes [8, 12) of the data section belong to no tensor (a hole before 'v')", e.Message);
        Assert.Equal("v", e.TensorName);
        Assert.Contains("hole.safetensors", e.Message);
    }

    [Fact]
    public void Bytes_after_the_last_tensor_are_refused()
    {
        var path = WriteRaw("trailing.safetensors", """{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}""", 16);
        var e = Assert.Throws<ModelLoadException>(() => SafetensorsFile.Open(path));
        Assert.Contains("8 bytes after the last tensor belong to none", e.Message);
        Assert.Contains("trailing.safetensors", e.Message);
    }

    [Fact]
    public void Offsets_beyond_the_data_are_refused()
    {
        var path = WriteRaw("beyond.safetensors", """{"w":{"dtype":"F32","shape":[4],"data_offsets":[1000,1016]}}""", 16);
        var e = Assert.Throws<ModelLoadException>(() => SafetensorsFile.Open(path));
        Assert.Equal("w", e.TensorName);
    }

    [Fact]
    public void Huge_header_length_is_refused_before_allocation()
    {
        var path = WriteRaw("huge.safetensors", "{}", 0, lyingLength: 1UL << 40);
        var e = Assert.Throws<ModelLoadException>(() => SafetensorsFile.Open(path));
        Assert.Contains("limit", e.Message);
    }

    [Fact]
    public void Header_longer_than_the_file_is_refused()
    {
        var path = WriteRaw("short.safetensors", "{}", 0, lyingLength: 4096);
        var e = Assert.Throws<ModelLoadException>(() => SafetensorsFile.Open(path));
        Assert.Contains("truncated", e.Message);
    }

    [Fact]
    public void A_header_that_is_not_utf8_is_refused()
    {
        // {"w\xFF": ...}: a byte that cannot occur in UTF-8, inside a tensor name.
        var json = Encoding.ASCII.GetBytes("""{"wX":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}""");
        json[Array.IndexOf(json, (byte)'X')] = 0xFF;
        var bytes = new byte[8 + json.Length + 4];
        BinaryPrimitives.WriteUInt64LittleEndian(bytes, (ulong)json.Length);
        json.CopyTo(bytes, 8);
        var path = Path.Combine(_dir, "latin1.safetensors");
        File.WriteAllBytes(path, bytes);
        var e = Assert.Throws<ModelLoadException>(() => SafetensorsFile.Open(path));
        Assert.Contains("UTF-8", e.Message);
        Assert.Equal(path, e.FilePath);
    }

    [Fact]
    public void A_tensor_named_twice_in_the_header_is_refused_naming_it()
    {
        var path = WriteRaw("twice.safetensors",
            """{"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"w":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}""", 8);
        var e = Assert.Throws<ModelLoadException>(() => SafetensorsFile.Open(path));
        Assert.Equal("w", e.TensorName);
        Assert.Contains("appears twice", e.Message);
        Assert.Contains("twice.safetensors", e.Message);
    }

    [Fact]
    public void Byte_size_must_equal_dtype_times_shape()
    {
        var path = WriteRaw("size.safetensors", """{"w":{"dtype":"F16","shape":[4],"data_offsets":[0,16]}}""", 16);
        var e = Assert.Throws<ModelLoadException>(() => SafetensorsFile.Open(path));
        Assert.Equal("w", e.TensorName);
        Assert.Contains("needs 8", e.Message);
    }

    [Theory]
    [InlineData("""{"w":{"dtype":"F8_E4M3","shape":[4],"data_offsets":[0,4]}}""", "not supported")]
    [InlineData("""{"w":{"dtype":"Q4","shape":[4],"data_offsets":[0,4]}}""", "unknown dtype")]
    [InlineData("""{"w":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}}""", "shape entry 0")]
    [InlineData("""{"w":{"dtype":"F32","shape":[1],"data_offsets":[4,0]}}""", "end before")]
    [InlineData("""{"w":[1,2,3]}""", "not an object")]
    [InlineData("""{"w":{"dtype":"F32","shape":[1]}}""", "data_offsets")]
    [InlineData("""[1,2]""", "not a JSON object")]
    [InlineData("""{"w": {"dtype": "F32",""", "not valid JSON")]
    [InlineData("""{"__metadata__":{"a":1}}""", "__metadata__")]
    public void Malformed_headers_give_typed_errors(string header, string expected)
    {
        var path = WriteRaw("bad.safetensors", header, 16);
        var e = Assert.Throws<ModelLoadException>(() => SafetensorsFile.Open(path));
        Assert.Contains(expected, e.Message);
        Assert.Equal(path, e.FilePath);
    }

    [Fact]
    public void Too_short_for_a_header_length()
    {
        var path = Path.Combine(_dir, "tiny.safetensors");
        File.WriteAllBytes(path, [1, 2, 3]);
        Assert.Throws<ModelLoadException>(() => SafetensorsFile.Open(path));
    }

    [Fact]
    public void Unknown_key_is_a_typed_error()
    {
        using var st = SafetensorsFile.Open(ConvNeXt("open_clip_model.safetensors"));
        var e = Assert.Throws<ModelLoadException>(() => st.Load("no.such.key"));
        Assert.Equal("no.such.key", e.TensorName);
    }
}
