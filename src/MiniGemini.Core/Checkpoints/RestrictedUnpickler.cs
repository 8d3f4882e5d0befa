using System.Buffers.Binary;
using System.Numerics;
using System.Text;
using TorchSharp;

namespace MiniGemini.Checkpoints;

/// <summary>Where a tensor's data lives inside a PyTorch zip checkpoint, as the pickle describes it.</summary>
internal sealed record PickledTensor(string StorageKey, torch.ScalarType DType, long StorageElements,
    long Offset, long[] Shape, long[] Stride);

/// <summary>
/// A pickle interpreter for PyTorch state dicts (<c>torch.save</c> zip format, data.pkl) that never executes code:
/// only dicts, lists, tuples, scalars, strings and the handful of torch globals that rebuild tensors are allowed.
/// Any other global (the mechanism by which pickles run arbitrary code) is refused.
/// </summary>
internal sealed class RestrictedUnpickler
{
    sealed record Global(string Module, string Name);
    sealed record StorageRef(string Key, torch.ScalarType DType, long Elements);
    sealed class Mark { public static readonly Mark Instance = new(); }

    static readonly HashSet<(string, string)> AllowedCalls = new()
    {
        ("collections", "OrderedDict"),
        ("torch._utils", "_rebuild_tensor_v2"),
        ("torch._utils", "_rebuild_tensor"),
        ("torch._utils", "_rebuild_parameter"),
    };

    readonly byte[] _data;
    readonly string _file;
    int _pos;
    readonly List<object?> _stack = new();
    readonly Dictionary<long, object?> _memo = new();

    RestrictedUnpickler(byte[] data, string file)
    {
        _data = data;
        _file = file;
    }

    /// <summary>Interprets data.pkl and returns its top-level object.</summary>
    public static object? Load(byte[] pickle, string file) => new RestrictedUnpickler(pickle, file).Run();

    ModelLoadException Bad(string what) => new($"{_file}: data.pkl at byte {_pos}: {what}", _file);

    object? Run()
    {
        while (true)
        {
            byte op = ReadByte();
            switch (op)
            {
                case 0x80: ReadByte(); break;                                   // PROTO
                case 0x95: Take(8); break;                                       // FRAME
                case (byte)'.': return Pop();                                    // STOP
                case (byte)'(': Push(Mark.Instance); break;                      // MARK
                case (byte)'}': Push(new Dictionary<object, object?>()); break;  // EMPTY_DICT
                case (byte)']': Push(new List<object?>()); break;                // EMPTY_LIST
                case (byte)')': Push(Array.Empty<object?>()); break;             // EMPTY_TUPLE
                case (byte)'N': Push(null); break;
                case 0x88: Push(true); break;
                case 0x89: Push(false); break;
                case (byte)'K': Push((long)ReadByte()); break;                                        // BININT1
                case (byte)'M': Push((long)BinaryPrimitives.ReadUInt16LittleEndian(Take(2))); break;  // BININT2
                case (byte)'J': Push((long)BinaryPrimitives.ReadInt32LittleEndian(Take(4))); break;   // BININT
                case 0x8a: Push(ReadLong(ReadByte())); break;                                          // LONG1
                case 0x8b: Push(ReadLong(ReadLength(BinaryPrimitives.ReadInt32LittleEndian(Take(4))))); break; // LONG4
                case (byte)'G': Push(BinaryPrimitives.ReadDoubleBigEndian(Take(8))); break;            // BINFLOAT
                case (byte)'X': Push(ReadString(ReadLength(BinaryPrimitives.ReadUInt32LittleEndian(Take(4))))); break; // BINUNICODE
                case 0x8c: Push(ReadString(ReadByte())); break;                                        // SHORT_BINUNICODE
                case 0x8d: Push(ReadString(ReadLength(BinaryPrimitives.ReadUInt64LittleEndian(Take(8))))); break; // BINUNICODE8
                case (byte)'B': Push(Take(ReadLength(BinaryPrimitives.ReadUInt32LittleEndian(Take(4)))).ToArray()); break; // BINBYTES
                case (byte)'C': Push(Take(ReadByte()).ToArray()); break;                              // SHORT_BINBYTES
                case (byte)'q': _memo[ReadByte()] = Peek(); break;                                     // BINPUT
                case (byte)'r': _memo[BinaryPrimitives.ReadUInt32LittleEndian(Take(4))] = Peek(); break; // LONG_BINPUT
                case 0x94: _memo[_memo.Count] = Peek(); break;                                         // MEMOIZE
                case (byte)'h': Push(Recall(ReadByte())); break;                                       // BINGET
                case (byte)'j': Push(Recall(BinaryPrimitives.ReadUInt32LittleEndian(Take(4)))); break; // LONG_BINGET
                case (byte)'t': Push(PopToMark().ToArray()); break;                                    // TUPLE
                case 0x85: Push(new[] { Pop() }); break;                                               // TUPLE1
                case 0x86: { var b = Pop(); var a = Pop(); Push(new[] { a, b }); break; }             // TUPLE2
                case 0x87: { var c = Pop(); var b = Pop(); var a = Pop(); Push(new[] { a, b, c }); break; } // TUPLE3
                case (byte)'a': { var v = Pop(); AsList(Peek()).Add(v); break; }                      // APPEND
                case (byte)'e': { var items = PopToMark(); AsList(Peek()).AddRange(items); break; }   // APPENDS
                case (byte)'s': { var v = Pop(); var k = Pop(); AsDict(Peek())[Key(k)] = v; break; }  // SETITEM
                case (byte)'u':                                                                        // SETITEMS
                {
                    var items = PopToMark();
                    var dict = AsDict(Peek());
                    for (int i = 0; i + 1 < items.Count; i += 2) dict[Key(items[i])] = items[i + 1];
                    break;
                }
                case (byte)'c': Push(MakeGlobal(ReadLine(), ReadLine())); break;                      // GLOBAL
                case 0x93: { var name = Pop() as string; var module = Pop() as string; Push(MakeGlobal(module, name)); break; } // STACK_GLOBAL
                case (byte)'Q': Push(PersistentLoad(Pop())); break;                                    // BINPERSID
                case (byte)'R': { var args = Pop(); var callable = Pop(); Push(Call(callable, args)); break; } // REDUCE
                case (byte)'b': Pop(); break;  // BUILD: state for an OrderedDict (its _metadata); not needed
                default: throw Bad($"opcode 0x{op:x2} is not allowed in a tensor checkpoint.");
            }
        }
    }

    object MakeGlobal(string? module, string? name)
    {
        if (module is null || name is null) throw Bad("malformed global.");
        if (AllowedCalls.Contains((module, name))) return new Global(module, name);
        if (module == "torch" && StorageTypes.TryFromTorchStorage(name, out _)) return new Global(module, name);
        throw Bad($"refuses global {module}.{name}: only tensor data may be loaded, never code.");
    }

    object PersistentLoad(object? pid)
    {
        // ('storage', torch.FloatStorage, key, location, numel)
        if (pid is not object?[] { Length: 5 } t || t[0] as string != "storage" || t[1] is not Global storageType
            || !StorageTypes.TryFromTorchStorage(storageType.Name, out var dtype) || t[4] is not long elements)
            throw Bad("unsupported persistent id (expected a torch storage reference).");
        var key = t[2] as string ?? throw Bad("storage key is not a string.");
        return new StorageRef(key, dtype, elements);
    }

    object? Call(object? callable, object? args)
    {
        if (callable is not Global g) throw Bad("REDUCE on something that is not an allowed global.");
        var a = args as object?[] ?? throw Bad("REDUCE arguments are not a tuple.");
        switch (g.Module, g.Name)
        {
            case ("collections", "OrderedDict"):
                return new Dictionary<object, object?>();
            case ("torch._utils", "_rebuild_tensor_v2" or "_rebuild_tensor"):
                if (a.Length < 4 || a[0] is not StorageRef s || a[1] is not long offset)
                    throw Bad($"{g.Name} with unexpected arguments.");
                var shape = Longs(a[2]);
                var stride = Longs(a[3]);
                return new PickledTensor(s.Key, s.DType, s.Elements, offset, shape, stride);
            case ("torch._utils", "_rebuild_parameter"):
                return a.Length >= 1 && a[0] is PickledTensor p ? p : throw Bad("_rebuild_parameter without a tensor.");
            default:
                throw Bad($"{g.Module}.{g.Name} cannot be called.");
        }
    }

    long[] Longs(object? tuple) =>
        tuple is object?[] items && items.All(i => i is long)
            ? items.Select(i => (long)i!).ToArray()
            : throw Bad("tensor size/stride is not a tuple of integers.");

    static object Key(object? k) => k ?? "None";

    List<object?> AsList(object? o) => o as List<object?> ?? throw Bad("APPEND to something that is not a list.");

    Dictionary<object, object?> AsDict(object? o) => o as Dictionary<object, object?> ?? throw Bad("SETITEM on something that is not a dict.");

    object? Recall(long index) => _memo.TryGetValue(index, out var v) ? v : throw Bad($"memo entry {index} is undefined.");

    void Push(object? o) => _stack.Add(o);

    object? Peek() => _stack.Count > 0 ? _stack[^1] : throw Bad("stack underflow.");

    object? Pop()
    {
        var o = Peek();
        _stack.RemoveAt(_stack.Count - 1);
        if (o is Mark) throw Bad("unexpected MARK.");
        return o;
    }

    List<object?> PopToMark()
    {
        int mark = _stack.FindLastIndex(o => o is Mark);
        if (mark < 0) throw Bad("no MARK on the stack.");
        var items = _stack.GetRange(mark + 1, _stack.Count - mark - 1);
        _stack.RemoveRange(mark, _stack.Count - mark);
        return items;
    }

    byte ReadByte() => _pos < _data.Length ? _data[_pos++] : throw Bad("unexpected end of data.");

    ReadOnlySpan<byte> Take(int n)
    {
        if (n < 0 || _pos + n > _data.Length) throw Bad("unexpected end of data.");
        var span = _data.AsSpan(_pos, n);
        _pos += n;
        return span;
    }

    int ReadLength(long n) => n >= 0 && n <= _data.Length - _pos ? (int)n : throw Bad($"length {n} runs past the end of data.");

    int ReadLength(ulong n) => n <= (ulong)(_data.Length - _pos) ? (int)n : throw Bad($"length {n} runs past the end of data.");

    string ReadString(int n) => Encoding.UTF8.GetString(Take(n));

    object ReadLong(int n)
    {
        var value = new BigInteger(Take(n), isUnsigned: false, isBigEndian: false);
        return value >= long.MinValue && value <= long.MaxValue ? (long)value : throw Bad("integer out of range.");
    }

    string ReadLine()
    {
        int end = Array.IndexOf(_data, (byte)'\n', _pos);
        if (end < 0) throw Bad("unterminated GLOBAL name.");
        var s = Encoding.ASCII.GetString(_data, _pos, end - _pos);
        _pos = end + 1;
        return s;
    }
}
