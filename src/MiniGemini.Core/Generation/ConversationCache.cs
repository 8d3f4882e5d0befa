using MiniGemini.Modeling;
using static TorchSharp.torch;

namespace MiniGemini.Generation;

/// <summary>One position run of a prompt as the cache compares prompts: a text token, or a whole image named by its hash.</summary>
internal readonly record struct PromptSlot(int TokenId, string? ImageHash)
{
    public int Positions(int perImage) => ImageHash is null ? 1 : perImage;
}

/// <summary>
/// What a follow-up turn reuses from the turns before it, within a byte budget, least recently used out first: the
/// image tokens of pictures seen (keyed by the SHA-256 of their encoded bytes), and the keys and values of prompts
/// answered one at a time together with their answers (keyed by the prompt's slots). A new prompt then prefills only
/// the positions after its longest common prefix with a kept one, as vLLM's prefix caching and LLamaSharp's kept chat
/// state do. The kept values are the ones a recomputation would produce, so answers do not change. Owns its tensors;
/// used under the model's request gate, one request at a time.
/// </summary>
internal sealed class ConversationCache(long budgetBytes, int positionsPerImage) : IDisposable
{
    abstract class Entry : IDisposable
    {
        public abstract long Bytes { get; }
        public abstract void Dispose();
    }

    sealed class ImageEntry(string hash, Tensor tokens) : Entry
    {
        public string Hash { get; } = hash;
        public Tensor Tokens { get; } = tokens;
        public override long Bytes => Tokens.NumberOfElements * Tokens.ElementSize;
        public override void Dispose() => Tokens.Dispose();
    }

    sealed class PrefixEntry(PromptSlot[] slots, KvCache cache) : Entry
    {
        public PromptSlot[] Slots { get; } = slots;
        public KvCache Cache { get; } = cache;
        public override long Bytes => Cache.Bytes;
        public override void Dispose() => Cache.Dispose();
    }

    readonly LinkedList<Entry> _entries = new(); // most recently used first

    /// <summary>Bytes held now (at most the budget).</summary>
    public long Bytes { get; private set; }

    /// <summary>Entries held now.</summary>
    public int Count => _entries.Count;

    /// <summary>The image tokens <c>[N, H]</c> of a picture seen before, or null; the cache keeps owning them.</summary>
    public Tensor? FindImage(string hash)
    {
        for (var node = _entries.First; node is not null; node = node.Next)
            if (node.Value is ImageEntry image && image.Hash == hash)
            {
                Touch(node);
                return image.Tokens;
            }
        return null;
    }

    /// <summary>Keeps a copy of a picture's image tokens <c>[N, H]</c>.</summary>
    public void AddImage(string hash, Tensor tokens)
    {
        if (FindImage(hash) is not null) return;
        var copy = tokens.detach().clone();
        copy.DetachFromDisposeScope();
        Add(new ImageEntry(hash, copy));
    }

    /// <summary>
    /// The kept cache sharing the longest prefix with <paramref name="slots"/> and that prefix's length in positions, or
    /// (null, 0); the cache keeps owning it.
    /// </summary>
    public (KvCache? Cache, int Positions) FindPrefix(IReadOnlyList<PromptSlot> slots)
    {
        LinkedListNode<Entry>? best = null;
        int bestPositions = 0;
        for (var node = _entries.First; node is not null; node = node.Next)
        {
            if (node.Value is not PrefixEntry prefix) continue;
            int positions = 0;
            for (int i = 0; i < slots.Count && i < prefix.Slots.Length && slots[i] == prefix.Slots[i]; i++)
                positions += slots[i].Positions(positionsPerImage);
            if (positions > bestPositions) (best, bestPositions) = (node, positions);
        }
        if (best is null) return (null, 0);
        Touch(best);
        return (((PrefixEntry)best.Value).Cache, bestPositions);
    }

    /// <summary>
    /// Takes ownership of <paramref name="cache"/>, whose first positions hold <paramref name="slots"/> (positions past
    /// them are ignored). Kept prefixes of these slots are released: the new entry answers everything they did.
    /// </summary>
    public void AddPrefix(PromptSlot[] slots, KvCache cache)
    {
        for (var node = _entries.First; node is not null;)
        {
            var next = node.Next;
            if (node.Value is PrefixEntry old && old.Slots.Length <= slots.Length && old.Slots.AsSpan().SequenceEqual(slots.AsSpan(0, old.Slots.Length)))
                Remove(node);
            node = next;
        }
        cache.Trim();
        Add(new PrefixEntry(slots, cache));
    }

    void Add(Entry entry)
    {
        if (entry.Bytes > budgetBytes)
        {
            entry.Dispose(); // larger than the whole budget: nothing to gain from evicting everything for it
            return;
        }
        _entries.AddFirst(entry);
        Bytes += entry.Bytes;
        while (Bytes > budgetBytes) Remove(_entries.Last!);
    }

    void Touch(LinkedListNode<Entry> node)
    {
        _entries.Remove(node);
        _entries.AddFirst(node);
    }

    void Remove(LinkedListNode<Entry> node)
    {
        _entries.Remove(node);
        Bytes -= node.Value.Bytes;
        node.Value.Dispose();
    }

    /// <summary>Releases everything kept.</summary>
    public void Clear()
    {
        while (_entries.First is { } node) Remove(node);
    }

    public void Dispose() => Clear();
}
