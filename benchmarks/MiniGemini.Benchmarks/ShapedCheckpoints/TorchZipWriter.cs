using System.Diagnostics;
using System.Text;

namespace MiniGemini.Benchmarks.ShapedCheckpoints;

/// <summary>
/// Writes a state dict as <c>torch.save</c> does since PyTorch 1.6 (the zip format): under a folder named after the
/// file (<c>open_clip_pytorch_model/</c>), <c>data.pkl</c> (see <see cref="StateDictPickle"/>), <c>byteorder</c>
/// ("little"), one raw little-endian storage per tensor at <c>data/0</c>, <c>data/1</c>, …, and <c>version</c> ("3").
/// Storages are generated and streamed one at a time; <c>torch.load</c> and the library's
/// <c>TorchPickleCheckpoint</c> both read the result.
/// </summary>
public static class TorchZipWriter
{
    /// <summary>Writes <paramref name="tensors"/> with values from <paramref name="seed"/> to <paramref name="path"/>.</summary>
    public static WrittenFile Write(string path, IReadOnlyList<TensorSpec> tensors, ulong seed)
    {
        var clock = Stopwatch.StartNew();
        // torch names the archive's folder after the file, up to its extension.
        var root = Path.GetFileNameWithoutExtension(path) + "/";
        var buffer = new byte[TensorValues.ChunkBytes];
        using (var zip = new ZipStoreWriter(path))
        {
            zip.Add(root + "data.pkl", StateDictPickle.Serialize(tensors));
            zip.Add(root + "byteorder", Encoding.ASCII.GetBytes("little"));
            for (int i = 0; i < tensors.Count; i++)
            {
                var tensor = tensors[i];
                zip.Add(root + "data/" + StateDictPickle.StorageKey(i), tensor.Bytes, sink => new TensorValues(tensor, seed).CopyTo(sink, buffer));
            }
            zip.Add(root + "version", Encoding.ASCII.GetBytes("3\n"));
        }
        return new WrittenFile(path, new FileInfo(path).Length, tensors.Count, clock.Elapsed.TotalSeconds);
    }
}
