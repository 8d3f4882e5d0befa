using System.Buffers.Binary;
using System.Text;
using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;
using MiniGemini.Checkpoints;
using MiniGemini.Modeling;
using static TorchSharp.torch;

namespace MiniGemini.Tests.Checkpoints;

public sealed class SafetensorsPropertyTests
{
    static readonly ScalarType[] DTypes =
    [
        ScalarType.Float32, ScalarType.Float16, ScalarType.BFloat16, ScalarType.Float64, ScalarType.Int64,
        ScalarType.Int32, ScalarType.Int16, ScalarType.Int8, ScalarType.Byte, ScalarType.Bool,
    ];

    /// <summary>Opening arbitrary bytes either succeeds or fails with a ModelLoadException; never anything else.</summary>
    static bool OpensOrRefuses(byte[] bytes)
    {
        var path = Path.Combine(Path.GetTempPath(), $"mgm-prop-{Guid.NewGuid():N}.safetensors");
        File.WriteAllBytes(path, bytes);
        try
        {
            using var file = SafetensorsFile.Open(path);
            foreach (var key in file.Keys) file.Load(key).Dispose();
            return true;
        }
        catch (ModelLoadException)
        {
            return true;
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Property(MaxTest = 200)]
    public bool Random_bytes_never_crash(byte[] bytes) => OpensOrRefuses(bytes);

    [Property(MaxTest = 200)]
    public bool Random_text_after_a_valid_length_never_crashes(string header)
    {
        var json = Encoding.UTF8.GetBytes(header ?? "");
        var bytes = new byte[8 + json.Length + 32];
        BinaryPrimitives.WriteUInt64LittleEndian(bytes, (ulong)json.Length);
        json.CopyTo(bytes, 8);
        return OpensOrRefuses(bytes);
    }

    /// <summary>Flip bytes of a valid file's header: the parser must refuse or accept, never crash or hang.</summary>
    [Property(MaxTest = 300)]
    public bool Mutated_headers_never_crash(int seed, byte mask)
    {
        var valid = ValidFile(new Random(seed));
        var random = new Random(seed ^ 0x5bd1e995);
        int headerLength = (int)BinaryPrimitives.ReadUInt64LittleEndian(valid);
        for (int i = 0; i < 1 + random.Next(4); i++)
            valid[random.Next(0, 8 + headerLength)] ^= mask == 0 ? (byte)1 : mask;
        return OpensOrRefuses(valid);
    }

    [Property(MaxTest = 60)]
    public bool Every_written_file_round_trips(int seed)
    {
        using var scope = NewDisposeScope();
        var tensors = RandomTensors(new Random(seed));
        var path = Path.Combine(Path.GetTempPath(), $"mgm-rt-{Guid.NewGuid():N}.safetensors");
        try
        {
            SafetensorsWriter.Write(path, tensors);
            using var file = SafetensorsFile.Open(path);
            return file.Keys.Count == tensors.Count && tensors.All(kv =>
            {
                var back = file.Load(kv.Key);
                return back.dtype == kv.Value.dtype && back.shape.SequenceEqual(kv.Value.shape) && back.Equals(kv.Value);
            });
        }
        finally
        {
            File.Delete(path);
        }
    }

    static Dictionary<string, Tensor> RandomTensors(Random random)
    {
        var tensors = new Dictionary<string, Tensor>();
        int count = 1 + random.Next(5);
        for (int i = 0; i < count; i++)
        {
            var shape = Enumerable.Range(0, random.Next(4)).Select(_ => (long)random.Next(0, 5)).ToArray();
            var dtype = DTypes[random.Next(DTypes.Length)];
            tensors[$"layer.{i}.w{random.Next(1000)}"] = (randn(shape, generator: new TorchSharp.torch.Generator((ulong)random.Next())) * 20).to(dtype);
        }
        return tensors;
    }

    static byte[] ValidFile(Random random)
    {
        using var scope = NewDisposeScope();
        var path = Path.Combine(Path.GetTempPath(), $"mgm-valid-{Guid.NewGuid():N}.safetensors");
        try
        {
            SafetensorsWriter.Write(path, RandomTensors(random));
            return File.ReadAllBytes(path);
        }
        finally
        {
            File.Delete(path);
        }
    }
}
