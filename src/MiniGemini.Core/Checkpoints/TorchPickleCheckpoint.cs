using System.IO.Compression;
using TorchSharp;

namespace MiniGemini.Checkpoints;

/// <summary>
/// A PyTorch <c>torch.save</c> checkpoint in the zip format (e.g. <c>open_clip_pytorch_model.bin</c>) holding a
/// state dict. The pickle is interpreted by a restricted unpickler that refuses anything but tensor data, so loading a
/// hostile file cannot run code. Tensor data is read entry by entry on demand.
/// </summary>
internal sealed class TorchPickleCheckpoint : ITensorSource
{
    readonly ZipArchive _zip;
    readonly string _prefix;
    readonly Dictionary<string, PickledTensor> _tensors;
    readonly object _gate = new();
    readonly StagingBuffer _staging;

    TorchPickleCheckpoint(string path, ZipArchive zip, string prefix, Dictionary<string, PickledTensor> tensors, long stagingBytes)
    {
        _staging = new StagingBuffer(stagingBytes);
        Location = path;
        _zip = zip;
        _prefix = prefix;
        _tensors = tensors;
    }

    /// <summary>Opens a zip-format PyTorch checkpoint and reads its pickle.</summary>
    /// <param name="path">The checkpoint.</param>
    /// <param name="stagingBytes">The size of the buffer through which <see cref="ReadInto"/> converts dtypes (tests set a small one).</param>
    /// <exception cref="ModelLoadException">Not a zip checkpoint, or the pickle holds anything but tensors.</exception>
    public static TorchPickleCheckpoint Open(string path, long stagingBytes = SafetensorsFile.StagingBytes)
    {
        path = Path.GetFullPath(path);
        if (!File.Exists(path)) throw new ModelLoadException($"{path}: file not found.", path);
        ZipArchive zip;
        try
        {
            zip = ZipFile.OpenRead(path);
        }
        catch (InvalidDataException e)
        {
            throw new ModelLoadException(
                $"{path}: not a zip-format PyTorch checkpoint (the legacy pre-1.6 format is not supported; re-save it with torch.save).", path, inner: e);
        }
        try
        {
            var pkl = zip.Entries.FirstOrDefault(e => e.FullName.EndsWith("/data.pkl", StringComparison.Ordinal) && e.FullName.Count(c => c == '/') == 1)
                ?? throw new ModelLoadException($"{path}: no data.pkl in the archive.", path);
            var prefix = pkl.FullName[..^"data.pkl".Length];
            var byteOrder = zip.GetEntry(prefix + "byteorder");
            if (byteOrder is not null)
            {
                using var reader = new StreamReader(byteOrder.Open());
                var order = reader.ReadToEnd().Trim();
                if (order != "little") throw new ModelLoadException($"{path}: byte order '{order}' is not supported.", path);
            }
            RefuseBomb(pkl, path);
            if (pkl.Length > MaxPickleBytes)
                throw new ModelLoadException($"{path}: {pkl.FullName} is {pkl.Length} bytes; a state dict's pickle is far smaller (at most {MaxPickleBytes} accepted).", path);
            byte[] pickle;
            using (var s = pkl.Open())
            using (var ms = new MemoryStream())
            {
                s.CopyTo(ms);
                pickle = ms.ToArray();
            }
            var root = RestrictedUnpickler.Load(pickle, path);
            var tensors = Flatten(root, path);
            return new TorchPickleCheckpoint(path, zip, prefix, tensors, stagingBytes);
        }
        catch
        {
            zip.Dispose();
            throw;
        }
    }

    static Dictionary<string, PickledTensor> Flatten(object? root, string path)
    {
        if (root is not Dictionary<object, object?> dict)
            throw new ModelLoadException($"{path}: the checkpoint is not a state dict (top level is {root?.GetType().Name ?? "None"}).", path);
        // Training checkpoints wrap the weights: {"state_dict": {...}, "epoch": ...}.
        if (dict.TryGetValue("state_dict", out var inner) && inner is Dictionary<object, object?> innerDict)
            dict = innerDict;
        var result = new Dictionary<string, PickledTensor>(StringComparer.Ordinal);
        foreach (var (key, value) in dict)
            if (key is string name && value is PickledTensor t)
                result[name] = t;
        return result;
    }

    /// <inheritdoc/>
    public string Location { get; }

    /// <inheritdoc/>
    public IReadOnlyCollection<string> Keys => _tensors.Keys;

    /// <inheritdoc/>
    public bool TryGetInfo(string key, out TensorInfo info)
    {
        if (_tensors.TryGetValue(key, out var t))
        {
            info = new TensorInfo(key, t.DType, t.Shape, Location);
            return true;
        }
        info = null!;
        return false;
    }

    /// <summary>The largest data.pkl read (the pickle of a 70B model's state dict is a few MB).</summary>
    internal const long MaxPickleBytes = 256L << 20;

    /// <summary>How many times its stored size an entry may expand to; torch.save stores entries uncompressed.</summary>
    internal const long MaxExpansion = 100;

    /// <summary>Refuses a compressed entry that would expand far beyond its stored bytes (a zip bomb), before reading it.</summary>
    static void RefuseBomb(ZipArchiveEntry entry, string path)
    {
        if (entry.Length > 1 << 20 && entry.Length > MaxExpansion * Math.Max(entry.CompressedLength, 1))
            throw new ModelLoadException(
                $"{path}: entry {entry.FullName} expands from {entry.CompressedLength} to {entry.Length} bytes (over {MaxExpansion} times); torch.save stores its entries uncompressed, so this is not a checkpoint it wrote.", path);
    }

    /// <inheritdoc/>
    public torch.Tensor Load(string key)
    {
        var (t, entry) = Stored(key);
        using var storage = torch.empty(t.StorageElements, t.DType);
        lock (_gate)
        {
            using var stream = entry.Open();
            TensorMemory.ForEachChunk(storage, (dest, _) => stream.ReadExactly(dest));
        }
        // One copy into a tensor of its own, so a view of part of a shared storage does not keep all of it alive.
        using var view = storage.as_strided(t.Shape, t.Stride, t.Offset);
        var tensor = torch.empty(t.Shape, t.DType);
        tensor.copy_(view);
        return tensor;
    }

    /// <summary>
    /// Reads a tensor that fills its storage in row-major order (as <c>torch.save</c> stores a module's parameters)
    /// into a contiguous <paramref name="destination"/> by <see cref="StagingBuffer.ReadInto"/>: on the CPU in the
    /// stored dtype straight into its memory, otherwise converted part by part. Other tensors go through <see cref="Load"/>.
    /// </summary>
    public void ReadInto(string key, torch.Tensor destination)
    {
        var (t, entry) = Stored(key);
        if (!t.Shape.SequenceEqual(destination.shape))
            throw new ModelLoadException($"{Location}: tensor '{key}' is {TensorHelpers.Shape(t.Shape)}, the destination {TensorHelpers.Shape(destination.shape)}.", Location, key);
        if (!FillsItsStorage(t) || !destination.is_contiguous())
        {
            using var value = Load(key);
            using var _ = torch.no_grad();
            destination.copy_(value);
            return;
        }
        lock (_gate)
        {
            using var stream = entry.Open();
            _staging.ReadInto(destination, t.DType, (chunk, _) => stream.ReadExactly(chunk));
        }
    }

    /// <summary>Whether a tensor is its whole storage, row-major from its first element.</summary>
    static bool FillsItsStorage(PickledTensor t)
    {
        long expected = 1;
        for (int i = t.Shape.Length - 1; i >= 0; i--)
        {
            if (t.Shape[i] != 1 && t.Stride[i] != expected) return false;
            expected *= t.Shape[i];
        }
        return t.Offset == 0 && expected == t.StorageElements;
    }

    /// <summary>
    /// A tensor's record and its storage's zip entry, checked before anything is allocated: the tensor lies inside its
    /// storage and the entry holds that storage's bytes, so a storage that claims 10^12 elements is refused by name.
    /// </summary>
    (PickledTensor Tensor, ZipArchiveEntry Entry) Stored(string key)
    {
        if (!_tensors.TryGetValue(key, out var t))
            throw new ModelLoadException($"{Location}: no tensor '{key}'.", Location, key);
        long extent = t.Offset + 1 + t.Shape.Zip(t.Stride, (n, s) => (n - 1) * s).Sum();
        if (t.Shape.Any(n => n == 0)) extent = 0;
        if (t.Offset < 0 || t.Stride.Length != t.Shape.Length || t.Stride.Any(s => s < 0) || extent > t.StorageElements)
            throw new ModelLoadException($"{Location}: tensor '{key}' ({string.Join("x", t.Shape)}, offset {t.Offset}) lies outside its storage of {t.StorageElements} elements.", Location, key);
        ZipArchiveEntry entry;
        lock (_gate)
            entry = _zip.GetEntry(_prefix + "data/" + t.StorageKey)
                ?? throw new ModelLoadException($"{Location}: storage data/{t.StorageKey} of tensor '{key}' is missing.", Location, key);
        long expected = t.StorageElements * StorageTypes.SizeOf(t.DType);
        if (entry.Length != expected)
            throw new ModelLoadException($"{Location}: storage data/{t.StorageKey} of tensor '{key}' holds {entry.Length} bytes, expected {expected}.", Location, key);
        RefuseBomb(entry, Location);
        return (t, entry);
    }

    /// <inheritdoc/>
    public void Dispose()
    {
        lock (_gate)
        {
            _zip.Dispose();
            _staging.Dispose();
        }
    }
}
