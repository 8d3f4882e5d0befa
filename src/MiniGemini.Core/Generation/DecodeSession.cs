using MiniGemini.Modeling;
using TorchSharp;
using static TorchSharp.torch;

namespace MiniGemini.Generation;

/// <summary>
/// The state of one generation request: the preallocated cache, the attention mask and next positions (written in
/// place), finished flags and the sampler. Each <see cref="Step"/> runs in its own dispose scope and inference
/// mode, so nothing scoped is held between steps and the caller may resume on any thread. Owns its tensors until
/// <see cref="Dispose"/>.
/// </summary>
internal sealed class DecodeSession : IDisposable
{
    readonly CausalLanguageModel _llm;
    readonly int _maxNewTokens;
    readonly long _pad;
    readonly HashSet<int> _eos;
    readonly KvCache _cache;
    readonly Sampler _sampler;
    readonly Tensor? _mask;       // [B, capacity] bool, filled column by column; null for an unpadded batch
    readonly Tensor _positions;   // [B, 1] int64: position of the next fed token
    readonly Tensor _eosIds;      // [n_eos] int64
    readonly Tensor _finished;    // [B] bool
    readonly bool[] _finishedHost;
    readonly Action<KvCache>? _keep;
    Tensor? _prompt;              // the caller's prompt embeddings, until the prefill has run
    Tensor? _last;                // [B] int64: the tokens to feed next
    int _step;

    public DecodeSession(CausalLanguageModel llm, Tensor inputsEmbeds, Tensor? attentionMask, GenerationOptions options, int maxNewTokens,
        IReadOnlyList<int> eos, long pad, TokenGenerator.CacheReuse? reuse = null)
    {
        _llm = llm;
        _maxNewTokens = maxNewTokens;
        _pad = pad;
        _eos = [.. eos];
        int batch = (int)inputsEmbeds.shape[0], promptLength = (int)inputsEmbeds.shape[1];
        var device = llm.Device;
        using var _ = inference_mode();
        using var scope = NewDisposeScope();
        int past = reuse?.Past is null ? 0 : reuse.Length;
        _cache = llm.CreateCache(batch, past + promptLength + maxNewTokens - 1);
        if (past > 0) _cache.CopyPrefixFrom(reuse!.Past!, past);
        _keep = reuse?.Keep;
        _sampler = new Sampler(options, batch, llm.Config.VocabSize, device);
        _prompt = inputsEmbeds;
        if (attentionMask is not null)
        {
            _mask = zeros([batch, _cache.Capacity], ScalarType.Bool, device).DetachFromDisposeScope();
            _mask.narrow(1, 0, promptLength).copy_(attentionMask.ne(Scalars.Zero));
        }
        _positions = zeros([batch, 1], ScalarType.Int64, device).DetachFromDisposeScope();
        _eosIds = tensor(eos.Select(id => (long)id).ToArray(), device: device).DetachFromDisposeScope();
        _finished = zeros([batch], ScalarType.Bool, device).DetachFromDisposeScope();
        _finishedHost = new bool[batch];
    }

    /// <summary>True once every row has finished or the token budget is spent.</summary>
    public bool IsDone => _step >= _maxNewTokens || _finishedHost.All(f => f);

    /// <summary>Runs the prefill (first call) or one decode step and returns the chosen tokens.</summary>
    public GeneratedTokens Step()
    {
        if (IsDone) throw new InvalidOperationException("Generation has already ended.");
        using var _ = inference_mode();
        using var scope = NewDisposeScope();
        var logits = _prompt is not null ? Prefill(_prompt) : DecodeNext(_last!);   // [B, V]
        var next = where(_finished, _pad, _sampler.Choose(logits));                 // [B]
        _finished.logical_or_(next.isin(_eosIds));
        _sampler.Observe(next);
        _last?.Dispose();
        _last = next.DetachFromDisposeScope();
        return Report(next.cpu().data<long>().ToArray());                           // the step's one host read
    }

    Tensor Prefill(Tensor prompt)
    {
        long t = prompt.shape[1], past = _cache.Length;
        Tensor positions;
        if (_mask is null)
        {
            positions = arange(past, past + t, device: _llm.Device).expand(prompt.shape[0], t);
            using var length = (past + t).ToScalar();
            _positions.fill_(length);
        }
        else
        {
            // Left padding: real tokens get positions 0..n−1, padding clamps to 0 (and is masked out).
            var real = _mask.narrow(1, 0, t).to(ScalarType.Int64);
            positions = real.cumsum(1).sub_(Scalars.One).clamp_min_(Scalars.Zero);
            _positions.copy_(real.sum(1, keepdim: true));
        }
        var logits = _llm.Forward(prompt, positions, _mask?.narrow(1, 0, t), _cache);
        _prompt = null;
        return logits;
    }

    Tensor DecodeNext(Tensor last)
    {
        int length = _cache.Length + 1;
        _mask?.narrow(1, length - 1, 1).fill_(Scalars.True);
        var logits = _llm.DecodeStep(last.view(-1, 1), _positions, _mask?.narrow(1, 0, length), _cache);
        _positions.add_(Scalars.One, Scalars.One);
        return logits;
    }

    GeneratedTokens Report(long[] ids)
    {
        var tokens = new int[ids.Length];
        var emitted = new bool[ids.Length];
        for (int b = 0; b < ids.Length; b++)
        {
            tokens[b] = (int)ids[b];
            emitted[b] = !_finishedHost[b];
            if (emitted[b] && _eos.Contains(tokens[b])) _finishedHost[b] = true;
        }
        return new GeneratedTokens(_step++, tokens, emitted, (bool[])_finishedHost.Clone());
    }

    public void Dispose()
    {
        if (_keep is null) _cache.Dispose();
        else _keep(_cache);
        _sampler.Dispose();
        _last?.Dispose();
        _mask?.Dispose();
        _positions.Dispose();
        _eosIds.Dispose();
        _finished.Dispose();
    }
}
