using TorchSharp;
using static TorchSharp.torch;
using static TorchSharp.torch.nn.functional;

namespace MiniGemini.Generation;

/// <summary>
/// Picks each row's next token from float32 logits with transformers' processors in transformers' order —
/// repetition penalty, then (when sampling) temperature, top-k, top-p — and draws from the request's own seeded
/// generator, so a seed reproduces a run whatever else the process samples.
/// </summary>
/// <remarks>
/// TorchSharp can only create CPU generators, so the draw is made by inverse transform: one uniform number per row
/// from the request's CPU generator, then the first token whose cumulative probability exceeds it, on the logits'
/// device. A seed gives the same tokens on every device (up to the device's rounding of the probabilities).
/// </remarks>
internal sealed class Sampler : IDisposable
{
    readonly GenerationOptions _options;
    readonly Generator? _generator;
    readonly Tensor? _seen; // [B, V] bool: tokens each row has produced (for the repetition penalty)

    public Sampler(GenerationOptions options, int batch, int vocab, Device device)
    {
        _options = options;
        if (options.IsSampling)
            _generator = new Generator((ulong)(options.Seed ?? Random.Shared.NextInt64()));
        if (options.RepetitionPenalty != 1.0)
            _seen = zeros([batch, vocab], ScalarType.Bool, device).DetachFromDisposeScope();
    }

    /// <summary>logits [B, V] (float32) → chosen ids [B] (int64).</summary>
    public Tensor Choose(Tensor logits)
    {
        using var scope = NewDisposeScope();
        var scores = _seen is null ? logits : ApplyRepetitionPenalty(logits, _seen, _options.RepetitionPenalty);
        if (!_options.IsSampling) return scores.argmax(-1).MoveToOuterDisposeScope();
        if (_options.Temperature != 1.0)
        {
            using var temperature = _options.Temperature.ToScalar();
            scores = scores.div(temperature);
        }
        if (_options.TopK > 0) scores = ApplyTopK(scores, _options.TopK);
        if (_options.TopP < 1.0) scores = ApplyTopP(scores, _options.TopP);
        var cdf = softmax(scores, -1).cumsum(-1);                                          // [B, V]
        var u = rand([cdf.shape[0], 1], generator: _generator).to(cdf.device) * cdf[.., ^1..]; // [B, 1], in [0, total)
        return cdf.le(u).sum(-1).MoveToOuterDisposeScope();                               // first index with cdf > u
    }

    /// <summary>Records the ids [B] fed back to the model, which the repetition penalty then applies to.</summary>
    public void Observe(Tensor ids)
    {
        if (_seen is null) return;
        using var scope = NewDisposeScope();
        var index = ids.view(-1, 1);
        _seen.scatter_(1, index, ones(index.shape, ScalarType.Bool, _seen.device));
    }

    /// <summary>HF <c>RepetitionPenaltyLogitsProcessor</c>: seen tokens' logits divided by the penalty if positive, multiplied if negative.</summary>
    internal static Tensor ApplyRepetitionPenalty(Tensor scores, Tensor seen, double penalty)
    {
        using var scope = NewDisposeScope();
        using var factor = penalty.ToScalar();
        var penalised = where(scores.lt(Scalars.Zero), scores.mul(factor), scores.div(factor));
        return where(seen, penalised, scores).MoveToOuterDisposeScope();
    }

    /// <summary>HF <c>TopKLogitsWarper</c>: logits below the k-th largest become −∞ (ties with it survive).</summary>
    internal static Tensor ApplyTopK(Tensor scores, int k)
    {
        using var scope = NewDisposeScope();
        k = (int)Math.Min(k, scores.shape[^1]);
        var kth = scores.topk(k, -1).values.narrow(-1, k - 1, 1);  // [B, 1]
        return scores.masked_fill(scores.lt(kth), Scalars.NegativeInfinity).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// HF <c>TopPLogitsWarper</c>: in ascending order, drop tokens while the cumulative probability is ≤ 1 − p,
    /// always keeping the most likely one.
    /// </summary>
    internal static Tensor ApplyTopP(Tensor scores, double p)
    {
        using var scope = NewDisposeScope();
        var (sorted, order) = scores.sort(-1, descending: false);
        var cumulative = softmax(sorted, -1).cumsum(-1);
        using var threshold = (1 - p).ToScalar();
        var dropSorted = cumulative.le(threshold);
        dropSorted.narrow(-1, dropSorted.shape[^1] - 1, 1).fill_(Scalars.False);
        var drop = dropSorted.scatter(-1, order, dropSorted);
        return scores.masked_fill(drop, Scalars.NegativeInfinity).MoveToOuterDisposeScope();
    }

    public void Dispose()
    {
        _generator?.Dispose();
        _seen?.Dispose();
    }
}
