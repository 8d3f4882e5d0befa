using System.Runtime.InteropServices;

namespace MiniGemini.Benchmarks.ShapedCheckpoints;

/// <summary>
/// A file written front to back that does not fill the page cache: every <see cref="WindowBytes"/> written, the
/// window before is flushed to disk and dropped from the cache (Linux <c>sync_file_range</c> + <c>posix_fadvise</c>),
/// so that writing a 13 GB checkpoint leaves at most two windows of it in memory and evicts nobody else's pages.
/// Elsewhere it is a plain buffered file.
/// </summary>
public sealed class StreamingFile : IDisposable
{
    /// <summary>Bytes between two flushes.</summary>
    public const long WindowBytes = 256L << 20;

    readonly FileStream _stream;
    readonly bool _linux = OperatingSystem.IsLinux();
    long _flushedUpTo;      // start of the window whose writeback was started last
    long _droppedUpTo;      // everything before this is on disk and out of the cache

    /// <summary>Creates (or replaces) <paramref name="path"/>.</summary>
    public StreamingFile(string path)
    {
        _stream = new FileStream(path, FileMode.Create, FileAccess.ReadWrite, FileShare.Read, bufferSize: 0);
        Path = path;
    }

    /// <summary>The file's path.</summary>
    public string Path { get; }

    /// <summary>Bytes written so far (the current position).</summary>
    public long Position => _stream.Position;

    /// <summary>Appends <paramref name="bytes"/>.</summary>
    public void Write(ReadOnlySpan<byte> bytes)
    {
        _stream.Write(bytes);
        if (_linux && _stream.Position - _flushedUpTo >= 2 * WindowBytes) Release();
    }

    /// <summary>Overwrites bytes already written at <paramref name="offset"/> (a header patched after its data), keeping the position.</summary>
    public void Patch(long offset, ReadOnlySpan<byte> bytes)
    {
        RandomAccess.Write(_stream.SafeFileHandle, bytes, offset);
    }

    /// <summary>Starts writeback of the window just completed and drops the one before it, which is on disk by now.</summary>
    void Release()
    {
        int fd = (int)_stream.SafeFileHandle.DangerousGetHandle();
        long start = _flushedUpTo + WindowBytes;
        _ = sync_file_range(fd, start, WindowBytes, SyncFileRangeWrite);
        if (_droppedUpTo < start)
        {
            _ = sync_file_range(fd, _droppedUpTo, start - _droppedUpTo, SyncFileRangeWaitBefore | SyncFileRangeWrite | SyncFileRangeWaitAfter);
            _ = posix_fadvise(fd, _droppedUpTo, start - _droppedUpTo, PosixFadvDontNeed);
            _droppedUpTo = start;
        }
        _flushedUpTo = start;
    }

    /// <summary>Flushes everything to disk and drops it from the cache.</summary>
    public void Dispose()
    {
        _stream.Flush(flushToDisk: true);
        if (_linux) _ = posix_fadvise((int)_stream.SafeFileHandle.DangerousGetHandle(), 0, 0, PosixFadvDontNeed);
        _stream.Dispose();
    }

    const int SyncFileRangeWaitBefore = 1, SyncFileRangeWrite = 2, SyncFileRangeWaitAfter = 4;
    const int PosixFadvDontNeed = 4;

    [DllImport("libc", SetLastError = true)]
    static extern int sync_file_range(int fd, long offset, long nbytes, int flags);

    [DllImport("libc", SetLastError = true)]
    static extern int posix_fadvise(int fd, long offset, long len, int advice);
}
