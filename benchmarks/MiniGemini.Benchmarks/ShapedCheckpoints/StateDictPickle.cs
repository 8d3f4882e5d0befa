using System.Buffers.Binary;
using System.Text;

namespace MiniGemini.Benchmarks.ShapedCheckpoints;

/// <summary>
/// The <c>data.pkl</c> of a torch.save'd state dict, as torch writes it with pickle protocol 2: an
/// <c>collections.OrderedDict</c> whose values are <c>torch._utils._rebuild_tensor_v2(storage, offset, size, stride,
/// requires_grad=False, backward_hooks=OrderedDict())</c>, each storage a persistent id
/// <c>('storage', torch.FloatStorage, key, 'cpu', numel)</c> whose bytes live in the archive at <c>data/key</c>.
/// Every tensor here owns its storage (offset 0, contiguous strides). No memo is written: the pickle is valid without
/// one, only larger.
/// </summary>
public static class StateDictPickle
{
    /// <summary>The pickle; tensor <c>i</c> of <paramref name="tensors"/> uses storage key <c>i</c>, as torch numbers them.</summary>
    public static byte[] Serialize(IReadOnlyList<TensorSpec> tensors)
    {
        var p = new Writer();
        p.Op(0x80).Byte(2);                                   // PROTO 2
        p.Global("collections", "OrderedDict").Op(')').Op('R'); // OrderedDict()
        // SETITEMS in batches of 1000, as pickle's batching does.
        for (int start = 0; start < tensors.Count; start += 1000)
        {
            p.Op('(');
            for (int i = start; i < Math.Min(tensors.Count, start + 1000); i++)
            {
                var t = tensors[i];
                p.String(t.Key);
                p.Global("torch._utils", "_rebuild_tensor_v2").Op('(');
                p.Op('(').String("storage").Global("torch", t.Type.TorchStorageName()).String(StorageKey(i)).String("cpu").Int(t.Elements).Op('t').Op('Q');
                p.Int(0).Tuple(t.Shape).Tuple(ContiguousStrides(t.Shape)).Op(0x89);   // offset, size, stride, NEWFALSE
                p.Global("collections", "OrderedDict").Op(')').Op('R');            // backward_hooks
                p.Op('t').Op('R');
            }
            p.Op('u');
        }
        p.Op('.');
        return p.ToArray();
    }

    /// <summary>The storage key of the <paramref name="index"/>-th tensor (its entry is <c>data/{key}</c>).</summary>
    public static string StorageKey(int index) => index.ToString(System.Globalization.CultureInfo.InvariantCulture);

    /// <summary>Row-major strides, in elements.</summary>
    public static long[] ContiguousStrides(long[] shape)
    {
        var strides = new long[shape.Length];
        long step = 1;
        for (int d = shape.Length - 1; d >= 0; d--)
        {
            strides[d] = step;
            step *= Math.Max(shape[d], 1);
        }
        return strides;
    }

    sealed class Writer
    {
        readonly MemoryStream _out = new();

        public Writer Op(char op) => Byte((byte)op);

        public Writer Op(byte op) => Byte(op);

        public Writer Byte(byte b)
        {
            _out.WriteByte(b);
            return this;
        }

        /// <summary>GLOBAL: <c>c module\nname\n</c>.</summary>
        public Writer Global(string module, string name)
        {
            Op('c');
            _out.Write(Encoding.ASCII.GetBytes(module + "\n" + name + "\n"));
            return this;
        }

        /// <summary>BINUNICODE: <c>X</c>, 4-byte length, UTF-8.</summary>
        public Writer String(string text)
        {
            var bytes = Encoding.UTF8.GetBytes(text);
            Op('X');
            Span<byte> length = stackalloc byte[4];
            BinaryPrimitives.WriteUInt32LittleEndian(length, (uint)bytes.Length);
            _out.Write(length);
            _out.Write(bytes);
            return this;
        }

        /// <summary>The smallest integer opcode pickle would use: BININT1, BININT2, BININT or LONG1.</summary>
        public Writer Int(long value)
        {
            Span<byte> bytes = stackalloc byte[9];
            if (value is >= 0 and <= 0xFF) return Op('K').Byte((byte)value);
            if (value is >= 0 and <= 0xFFFF)
            {
                BinaryPrimitives.WriteUInt16LittleEndian(bytes, (ushort)value);
                Op('M');
                _out.Write(bytes[..2]);
                return this;
            }
            if (value is >= int.MinValue and <= int.MaxValue)
            {
                BinaryPrimitives.WriteInt32LittleEndian(bytes, (int)value);
                Op('J');
                _out.Write(bytes[..4]);
                return this;
            }
            // LONG1: length byte, then two's complement little-endian, as short as the sign allows.
            BinaryPrimitives.WriteInt64LittleEndian(bytes, value);
            int n = 8;
            while (n > 1 && ((bytes[n - 1] == 0 && bytes[n - 2] < 0x80) || (bytes[n - 1] == 0xFF && bytes[n - 2] >= 0x80))) n--;
            Op(0x8a).Byte((byte)n);
            _out.Write(bytes[..n]);
            return this;
        }

        /// <summary>A tuple of integers: EMPTY_TUPLE, TUPLE1-3, or MARK … TUPLE.</summary>
        public Writer Tuple(long[] items)
        {
            if (items.Length == 0) return Op(')');
            if (items.Length > 3) Op('(');
            foreach (var item in items) Int(item);
            return items.Length switch
            {
                1 => Op(0x85),
                2 => Op(0x86),
                3 => Op(0x87),
                _ => Op('t'),
            };
        }

        public byte[] ToArray() => _out.ToArray();
    }
}
