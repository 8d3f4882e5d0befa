using System.Runtime.CompilerServices;
using MiniGemini.Modeling;
using TorchSharp;
using static TorchSharp.torch;

namespace MiniGemini.Generation;

/// <summary>
/// Token-level generation from prompt embeddings (text and spliced image features), the way transformers'
/// <c>generate(inputs_embeds=…)</c> does it: one prefill over the prompt into a preallocated cache, then one token per
/// step. Rows are left-padded (positions follow the attention mask); a row that emits an EOS id keeps yielding the
/// pad id until every row is done or <see cref="GenerationOptions.MaxNewTokens"/> is reached.
/// </summary>
/// <remarks>
/// Inputs are checked when the method is called, before any work. The cache is allocated and the prompt read when
/// the enumeration starts (the caller keeps the prompt tensors alive until then), and everything is released when the
/// enumeration ends — also when the caller stops early by leaving the loop, which is how stop strings end a stream.
/// The cancellation token is checked before every token.
/// </remarks>
internal static class TokenGenerator
{
    /// <summary>
    /// Generation that continues from an earlier request's keys and values: the first <paramref name="Length"/>
    /// positions of <paramref name="Past"/> stand for the prompt's first positions (the prompt embeddings then hold only
    /// the rest; one row, no mask). <paramref name="Keep"/>, when set, receives the cache when generation ends instead of
    /// it being freed, and owns it from then on.
    /// </summary>
    internal sealed record CacheReuse(KvCache? Past, int Length, Action<KvCache>? Keep);

    /// <summary>Generates synchronously, one <see cref="GeneratedTokens"/> per step.</summary>
    /// <exception cref="ArgumentException">Inputs of the wrong shape, dtype or device, or a right-padded mask.</exception>
    /// <exception cref="ContextLengthExceededException">Prompt plus new tokens exceed the model's context.</exception>
    public static IEnumerable<GeneratedTokens> Generate(CausalLanguageModel llm, Tensor inputsEmbeds, Tensor? attentionMask,
        GenerationOptions options, CancellationToken cancellationToken = default, CacheReuse? reuse = null)
    {
        var (eos, pad, maxNew) = Prepare(llm, inputsEmbeds, attentionMask, options, reuse);
        return Run(() => new DecodeSession(llm, inputsEmbeds, attentionMask, options, maxNew, eos, pad, reuse), cancellationToken);
    }

    /// <summary>
    /// Generates asynchronously: each step runs on the thread pool (every step holds its own dispose scope and
    /// inference mode, so hopping threads between steps is safe).
    /// </summary>
    /// <inheritdoc cref="Generate" path="/exception"/>
    public static IAsyncEnumerable<GeneratedTokens> GenerateAsync(CausalLanguageModel llm, Tensor inputsEmbeds, Tensor? attentionMask,
        GenerationOptions options, CancellationToken cancellationToken = default)
    {
        var (eos, pad, maxNew) = Prepare(llm, inputsEmbeds, attentionMask, options);
        return RunAsync(() => new DecodeSession(llm, inputsEmbeds, attentionMask, options, maxNew, eos, pad), cancellationToken);
    }

    static IEnumerable<GeneratedTokens> Run(Func<DecodeSession> start, CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        using var session = start();
        while (!session.IsDone)
        {
            cancellationToken.ThrowIfCancellationRequested();
            yield return session.Step();
        }
    }

    static async IAsyncEnumerable<GeneratedTokens> RunAsync(Func<DecodeSession> start,
        [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        using var session = await Task.Run(start, cancellationToken).ConfigureAwait(false);
        while (!session.IsDone)
        {
            cancellationToken.ThrowIfCancellationRequested();
            yield return await Task.Run(session.Step, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>Checks everything a request could get wrong and resolves the stop and pad ids.</summary>
    static (IReadOnlyList<int> Eos, long Pad, int MaxNewTokens) Prepare(CausalLanguageModel llm, Tensor embeds, Tensor? mask, GenerationOptions options,
        CacheReuse? reuse = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        var config = llm.Config;
        if (embeds.ndim != 3 || embeds.shape[2] != config.HiddenSize || embeds.shape[0] < 1 || embeds.shape[1] < 1)
            throw new ArgumentException($"inputsEmbeds must be [B, T, {config.HiddenSize}] with B, T ≥ 1, got {TensorHelpers.Shape(embeds.shape)}.", nameof(embeds));
        if (embeds.dtype != llm.DType || embeds.device.type != llm.Device.type)
            throw new ArgumentException($"inputsEmbeds is {embeds.dtype} on {embeds.device}; the model is {llm.DType} on {llm.Device}.", nameof(embeds));
        if (mask is not null) ValidateLeftPadded(mask, embeds.shape[0], embeds.shape[1]);
        if (reuse?.Past is { } past && (mask is not null || embeds.shape[0] != 1 || past.Batch != 1 || reuse.Length > past.Length))
            throw new ArgumentException($"A reused cache serves one unpadded row and at most its {past.Length} filled positions; got {reuse.Length} of them for {TensorHelpers.Shape(embeds.shape)}.", nameof(reuse));

        long prompt = (reuse?.Past is null ? 0 : reuse.Length) + embeds.shape[1], room = config.MaxPositionEmbeddings - prompt;
        if (room < 1)
            throw new ContextLengthExceededException((int)prompt + 1, config.MaxPositionEmbeddings,
                $"The prompt has {prompt} positions: with one new token that exceeds the model's max_position_embeddings ({config.MaxPositionEmbeddings}).");
        int maxNew = options.MaxNewTokens ?? (int)room;
        if (maxNew > room)
            throw new ContextLengthExceededException((int)(prompt + maxNew), config.MaxPositionEmbeddings,
                $"The prompt has {prompt} positions and {maxNew} new tokens were asked for: " +
                $"{prompt + maxNew} exceeds the model's max_position_embeddings ({config.MaxPositionEmbeddings}).");

        var eos = options.EosTokenIds ?? llm.EosTokenIds;
        foreach (var id in eos)
            if (id < 0 || id >= config.VocabSize)
                throw new ArgumentOutOfRangeException(nameof(options), id, $"EOS id {id} is outside the vocabulary [0, {config.VocabSize}).");
        long pad = options.PadTokenId ?? config.PadTokenId ?? (eos.Count > 0 ? eos[0] : 0);
        if (pad < 0 || pad >= config.VocabSize)
            throw new ArgumentOutOfRangeException(nameof(options), pad, $"Pad id {pad} is outside the vocabulary [0, {config.VocabSize}).");
        return (eos, pad, maxNew);
    }

    static void ValidateLeftPadded(Tensor mask, long batch, long length)
    {
        if (!mask.shape.SequenceEqual(new[] { batch, length }))
            throw new ArgumentException($"attentionMask must be [{batch}, {length}], got {TensorHelpers.Shape(mask.shape)}.", nameof(mask));
        using var scope = NewDisposeScope();
        if (!mask.select(1, -1).ne(Scalars.Zero).all().item<bool>())
            throw new ArgumentException(
                "attentionMask has padding at the end of a row; generation needs left padding (the last position of every row must be a real token).",
                nameof(mask));
    }
}
