using System.Buffers.Binary;
using System.IO.MemoryMappedFiles;
using TorchSharp;

namespace MiniGemini.Checkpoints;

/// <summary>How tensor bytes travel from disk into tensors.</summary>
internal enum TensorReadMode
{
    /// <summary>Map the file into memory and copy each tensor straight from the mapping (the default).</summary>
    MemoryMapped,
    /// <summary>Read each tensor with positioned reads; for file systems where mapping is unavailable.</summary>
    Streamed,
}

/// <summary>
/// A single <c>.safetensors</c> file. The header is parsed and validated when the file is opened; tensor data is read
/// on demand, one tensor at a time, straight into the destination tensor (no intermediate managed copy).
/// </summary>
internal sealed class SafetensorsFile : ITensorSource
{
    readonly Dictionary<string, SafetensorsEntry> _entries;
    readonly long _dataStart;
    readonly FileStream _stream;
    readonly StagingBuffer _staging = new(StagingBytes);
    readonly MemoryMappedFile? _map;
    readonly MemoryMappedViewAccessor? _view;

    SafetensorsFile(string path, FileStream stream, Dictionary<string, SafetensorsEntry> entries,
        IReadOnlyDictionary<string, string> metadata, long dataStart, TensorReadMode mode)
    {
        Location = path;
        _stream = stream;
        _entries = entries;
        Metadata = metadata;
        _dataStart = dataStart;
        if (mode == TensorReadMode.MemoryMapped && stream.Length > 0)
        {
            _map = MemoryMappedFile.CreateFromFile(stream, null, 0, MemoryMappedFileAccess.Read, HandleInheritability.None, leaveOpen: true);
            _view = _map.CreateViewAccessor(0, 0, MemoryMappedFileAccess.Read);
        }
    }

    /// <summary>Opens and validates a safetensors file.</summary>
    /// <exception cref="ModelLoadException">The file is truncated or its header is malformed or inconsistent.</exception>
    public static SafetensorsFile Open(string path, TensorReadMode mode = TensorReadMode.MemoryMapped)
    {
        path = Path.GetFullPath(path);
        if (!File.Exists(path)) throw new ModelLoadException($"{path}: file not found.", path);
        var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1, FileOptions.RandomAccess);
        try
        {
            long length = stream.Length;
            if (length < 8)
                throw new ModelLoadException($"{path}: {length} bytes is too short for a safetensors file (8-byte header length missing).", path);
            Span<byte> prefix = stackalloc byte[8];
            stream.ReadExactly(prefix);
            ulong headerLength = BinaryPrimitives.ReadUInt64LittleEndian(prefix);
            if (headerLength > SafetensorsHeader.MaxHeaderBytes)
                throw new ModelLoadException($"{path}: header length {headerLength} exceeds the {SafetensorsHeader.MaxHeaderBytes}-byte limit.", path);
            if ((long)headerLength > length - 8)
                throw new ModelLoadException($"{path}: header length {headerLength} exceeds the file ({length} bytes); the file is truncated.", path);
            var json = new byte[headerLength];
            stream.ReadExactly(json);
            long dataStart = 8 + (long)headerLength;
            var (entries, metadata) = SafetensorsHeader.Parse(json, length - dataStart, path);
            return new SafetensorsFile(path, stream, entries.ToDictionary(e => e.Name, StringComparer.Ordinal), metadata, dataStart, mode);
        }
        catch
        {
            stream.Dispose();
            throw;
        }
    }

    /// <inheritdoc/>
    public string Location { get; }

    /// <summary>The header's <c>__metadata__</c> strings.</summary>
    public IReadOnlyDictionary<string, string> Metadata { get; }

    /// <inheritdoc/>
    public IReadOnlyCollection<string> Keys => _entries.Keys;

    /// <inheritdoc/>
    public bool TryGetInfo(string key, out TensorInfo info)
    {
        if (_entries.TryGetValue(key, out var e))
        {
            info = new TensorInfo(key, e.DType, e.Shape, Location);
            return true;
        }
        info = null!;
        return false;
    }

    /// <inheritdoc/>
    public unsafe torch.Tensor Load(string key)
    {
        if (!_entries.TryGetValue(key, out var e))
            throw new ModelLoadException($"{Location}: no tensor '{key}'.", Location, key);
        var tensor = torch.empty(e.Shape, e.DType);
        try
        {
            long fileOffset = _dataStart + e.Begin;
            if (_view is not null)
            {
                byte* basePtr = null;
                _view.SafeMemoryMappedViewHandle.AcquirePointer(ref basePtr);
                try
                {
                    byte* src = basePtr + _view.PointerOffset + fileOffset;
                    TensorMemory.ForEachChunk(tensor, (dest, at) => new ReadOnlySpan<byte>(src + at, dest.Length).CopyTo(dest));
                }
                finally
                {
                    _view.SafeMemoryMappedViewHandle.ReleasePointer();
                }
            }
            else
            {
                TensorMemory.ForEachChunk(tensor, (dest, at) => ReadAt(dest, fileOffset + at, key));
            }
            return tensor;
        }
        catch
        {
            tensor.Dispose();
            throw;
        }
    }

    /// <summary>Bytes of the staging buffer through which a tensor is converted to another dtype.</summary>
    internal const long StagingBytes = 64L << 20;

    /// <summary>
    /// Reads a tensor straight into <paramref name="destination"/>. Of the stored dtype, contiguous and on the CPU, it
    /// receives positioned reads into its own memory: no copy in between, and no page of the file mapped into this
    /// process (a mapping would count every page read in the process's resident memory until it is closed). Otherwise
    /// the data passes through the file's staging buffer of <see cref="StagingBytes"/> and <c>copy_</c> converts it (a
    /// strided destination, which no module of the library has, takes a whole-tensor copy).
    /// </summary>
    public void ReadInto(string key, torch.Tensor destination)
    {
        lock (_staging) ReadInto(key, destination, _staging);
    }

    internal void ReadInto(string key, torch.Tensor destination, StagingBuffer staging)
    {
        if (!_entries.TryGetValue(key, out var e))
            throw new ModelLoadException($"{Location}: no tensor '{key}'.", Location, key);
        if (!e.Shape.SequenceEqual(destination.shape))
            throw new ModelLoadException($"{Location}: tensor '{key}' is {TensorHelpers.Shape(e.Shape)}, the destination {TensorHelpers.Shape(destination.shape)}.", Location, key);
        if (!destination.is_contiguous())
        {
            using var value = Load(key);
            using var noGrad = torch.no_grad();
            destination.copy_(value);
            return;
        }
        long fileOffset = _dataStart + e.Begin;
        staging.ReadInto(destination, e.DType, (chunk, at) => ReadAt(chunk, fileOffset + at, key));
    }

    /// <summary>
    /// The whole file mapped as one tensor per element type (<c>torch.from_file</c>, private mapping), made on the first
    /// <see cref="TryMap"/> of that type; tensors are views into it and keep the mapping alive after this file closes.
    /// </summary>
    readonly Dictionary<torch.ScalarType, torch.Tensor> _mappings = [];

    /// <inheritdoc/>
    public bool TryMap(string key, out torch.Tensor tensor)
    {
        if (!_entries.TryGetValue(key, out var e))
            throw new ModelLoadException($"{Location}: no tensor '{key}'.", Location, key);
        tensor = null!;
        long elementSize = StorageTypes.SizeOf(e.DType), count = (e.End - e.Begin) / elementSize, byteOffset = _dataStart + e.Begin;
        if (count == 0) return false;
        if (byteOffset % elementSize != 0) return false; // a view can only start on a whole element
        torch.Tensor whole;
        lock (_mappings)
        {
            if (!_mappings.TryGetValue(e.DType, out whole!))
                _mappings[e.DType] = whole = torch.from_file(Location, shared: false, size: _stream.Length / elementSize, dtype: e.DType);
        }
        using (var flat = whole.narrow(0, byteOffset / elementSize, count))
            tensor = flat.view(e.Shape);
        TensorMemory.ReadIn(tensor);
        return true;
    }

    void ReadAt(Span<byte> destination, long offset, string key)
    {
        int read = 0;
        while (read < destination.Length)
        {
            int n = RandomAccess.Read(_stream.SafeFileHandle, destination[read..], offset + read);
            if (n == 0) throw new ModelLoadException($"{Location}: tensor '{key}' ends early; the file is truncated.", Location, key);
            read += n;
        }
    }

    /// <inheritdoc/>
    public void Dispose()
    {
        lock (_staging) _staging.Dispose();
        _view?.Dispose();
        _map?.Dispose();
        lock (_mappings)
        {
            foreach (var mapping in _mappings.Values) mapping.Dispose();
            _mappings.Clear();
        }
        _stream.Dispose();
    }
}
