using System.Diagnostics;
using System.Text.Json;
using MiniGemini.Checkpoints;
using MiniGemini.Modeling;
using MiniGemini.Text;
using MiniGemini.Vision;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace MiniGemini.Training;

/// <summary>
/// Trains a <see cref="MiniGeminiModel"/> in place, on its own modules: the parameters the stage names learn (all
/// others are frozen and get no gradient), with MGM's loss — next-token cross-entropy on the answers only — AdamW,
/// warm-up + cosine learning rate, gradient clipping and accumulation. Runs are resumable: <see cref="Train"/>
/// writes a checkpoint (the model in the MGM layout, the optimizer state and the step) every
/// <see cref="TrainingOptions.CheckpointEvery"/> steps and continues from one it finds.
/// </summary>
/// <remarks>
/// Samples come from an indexed stream (<c>sampleAt(i)</c>): step s uses samples s·B·A … (s+1)·B·A − 1, so a resumed
/// run sees exactly the data the uninterrupted one would have seen. On the CPU with a fixed thread count runs are
/// deterministic for a given seed.
/// </remarks>
public sealed class MiniGeminiTrainer : IDisposable
{
    const string CheckpointFolder = "checkpoint";
    const string OptimizerFile = "optimizer.bin";
    const string StateFile = "trainer_state.json";
    const string TokenHeadFile = "token_head.bin";

    readonly MiniGeminiModel _model;
    readonly TrainingOptions _options;
    readonly List<(string Key, Parameter Parameter)> _trainable;
    readonly OptimizerHelper _optimizer;
    readonly List<(double Scale, AdamW.ParamGroup Group)> _groups;
    // TokenLabels and HrCropLabels objectives only: logits of every attribute's classes per image token (or crop); not part of the saved model.
    readonly LabelHead? _tokenHead;
    readonly ImageTokenCache? _imageTokens;

    /// <summary>Prepares <paramref name="model"/> for training: freezes what the stage does not train and builds AdamW.</summary>
    /// <exception cref="MiniGeminiTrainingException">The stage leaves no parameter of this model trainable.</exception>
    public MiniGeminiTrainer(MiniGeminiModel model, TrainingOptions options)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        (_model, _options) = (model, options);
        var all = model.Module.CheckpointParameters().ToList();
        foreach (var (key, p) in all) p.requires_grad = options.Stage.Trains(key);
        _trainable = all.Where(x => x.Parameter.requires_grad).ToList();
        if (_trainable.Count == 0)
            throw new MiniGeminiTrainingException(
                $"Stage '{options.Stage.Name}' trains nothing in this model: no parameter key starts with {string.Join(", ", options.Stage.TrainablePrefixes)}.");
        if (options.AnswerFocusLayer >= model.Module.Config.NumHiddenLayers)
            throw new MiniGeminiTrainingException($"AnswerFocusLayer is {options.AnswerFocusLayer}, but the LLM has {model.Module.Config.NumHiddenLayers} layers.");
        var optimized = _trainable.ToList();
        if (options.Stage.Objective != TrainingObjective.Answers)
        {
            long width = options.Stage.Objective == TrainingObjective.TokenLabels ? model.Config.MmHiddenSize
                : model.Config.MmHiddenSizeAux ?? throw new MiniGeminiTrainingException($"Stage '{options.Stage.Name}' trains the HR tower on crops, but this model has no HR tower.");
            random.manual_seed(options.Seed);
            _tokenHead = new LabelHead(width, options.TokenLabelClasses!.Sum());
            _tokenHead.to(model.TorchDevice, model.Module.DType);
            optimized.AddRange(_tokenHead.named_parameters().Select(x => ("token_head." + x.name, x.parameter)));
        }
        // Decoupled weight decay on matrices only; norms, biases and other vectors are not decayed. Towers may learn slower.
        _groups = optimized.GroupBy(x => (Decay: x.Parameter.dim() >= 2, Tower: TrainingStage.IsTower(x.Key)))
            .Select(g => (Scale: g.Key.Tower ? options.TowerLearningRateScale : 1.0,
                Group: new AdamW.ParamGroup(g.Select(x => x.Parameter).ToList(),
                    new AdamW.Options { LearningRate = options.LearningRate, weight_decay = g.Key.Decay ? options.WeightDecay : 0 })))
            .ToList();
        _optimizer = optim.AdamW(_groups.Select(g => g.Group).ToList(), options.LearningRate, options.Beta1, options.Beta2);
        if (options.ImageTokenCacheSize > 0) _imageTokens = new ImageTokenCache(options.ImageTokenCacheSize);
    }

    /// <summary>Keys (as in the checkpoint) of the parameters that learn.</summary>
    public IReadOnlyList<string> TrainableParameters => _trainable.Select(x => x.Key).ToList();

    /// <summary>
    /// Runs the optimizer steps from the last checkpoint under <paramref name="outputFolder"/> (or from step 0) to
    /// <see cref="TrainingOptions.Steps"/>, then saves the model there in the MGM layout. Returns the loss per step.
    /// </summary>
    /// <param name="sampleAt">The training stream: sample <c>i</c>, for any i ≥ 0.</param>
    /// <param name="outputFolder">Where checkpoints and the final model go. It must not hold anything but this run's checkpoint.</param>
    /// <param name="progress">Receives one report per step.</param>
    /// <param name="cancellationToken">Stops the run between micro-batches; what the last checkpoint holds is kept.</param>
    /// <exception cref="MiniGeminiTrainingException">The output folder holds something else than a checkpoint of this run.</exception>
    /// <exception cref="TrainingDataException">A sample cannot be learned from (no answer, too long, image that does not decode).</exception>
    public IReadOnlyList<double> Train(Func<long, TrainingSample> sampleAt, string outputFolder,
        IProgress<TrainingProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(sampleAt);
        ArgumentException.ThrowIfNullOrWhiteSpace(outputFolder);
        var checkpoint = Path.Combine(outputFolder, CheckpointFolder);
        var losses = PrepareOutput(outputFolder, checkpoint);
        int step = losses.Count, startStep = step, perStep = _options.BatchSize * _options.GradientAccumulation;
        random.manual_seed(_options.Seed + step);
        SetTraining(true);
        var clock = Stopwatch.StartNew();
        try
        {
            for (; step < _options.Steps; step++)
            {
                var started = clock.Elapsed;
                double lr = _options.LearningRateAt(step);
                foreach (var (scale, group) in _groups) group.LearningRate = lr * scale;

                double loss = 0;
                for (int micro = 0; micro < _options.GradientAccumulation; micro++)
                {
                    cancellationToken.ThrowIfCancellationRequested();
                    long first = (long)step * perStep + (long)micro * _options.BatchSize;
                    var batch = Enumerable.Range(0, _options.BatchSize).Select(i => sampleAt(first + i)).ToList();
                    using var scope = NewDisposeScope();
                    using var share = (1.0 / _options.GradientAccumulation).ToScalar();
                    var microLoss = Loss(batch).mul(share);
                    microLoss.backward();
                    loss += microLoss.ToDouble();
                }
                if (_options.GradientClip > 0) nn.utils.clip_grad_norm_(_groups.SelectMany(g => g.Group.Parameters), _options.GradientClip);
                _optimizer.step();
                _optimizer.zero_grad();
                _model.Module.Mining?.RefoldWeights();

                losses.Add(loss);
                var seconds = (clock.Elapsed - started).TotalSeconds;
                progress?.Report(new TrainingProgress(step + 1, _options.Steps, loss, lr, perStep / Math.Max(seconds, 1e-9), clock.Elapsed, startStep));
                if (_options.CheckpointEvery > 0 && (step + 1) % _options.CheckpointEvery == 0 && step + 1 < _options.Steps)
                    SaveCheckpoint(checkpoint, losses);
            }
        }
        finally
        {
            SetTraining(false);
        }
        Save(outputFolder);
        WriteLosses(Path.Combine(outputFolder, "losses.json"), losses);
        if (Directory.Exists(checkpoint)) Directory.Delete(checkpoint, recursive: true);
        return losses;
    }

    /// <summary>
    /// The mean masked next-token cross-entropy of a batch (a scalar with the autograd graph when the model is in
    /// train mode): conversations are right-padded, and only answer tokens count.
    /// </summary>
    internal Tensor Loss(IReadOnlyList<TrainingSample> batch)
    {
        if (_tokenHead is not null) return TokenLabelLoss(batch);
        var rows = batch.Select(s => LabelledConversation.Create(s, _model.Tokenizer, _model.Template)).ToList();
        int perImage = _model.ImageTokensPerImage, context = _model.ContextLength;
        for (int i = 0; i < rows.Count; i++)
            if (rows[i].Length(perImage) > context)
                throw new TrainingDataException(batch[i].Name, $"the conversation takes {rows[i].Length(perImage)} positions but the context holds {context}.");
        using var probe = _options.AnswerFocusWeight > 0 ? AnswerFocusProbe(batch, rows) : null;
        using var scope = NewDisposeScope();
        var loss = AnswerLoss(batch, rows, probe);
        if (probe is not null)
        {
            using var weight = _options.AnswerFocusWeight.ToScalar();
            loss = loss.Plus(probe.LogShares.mean().neg().mul(weight));
        }
        return loss.MoveToOuterDisposeScope();
    }

    /// <summary>The answer loss of <paramref name="rows"/>, filling <paramref name="probe"/> on the way when one is given.</summary>
    Tensor AnswerLoss(IReadOnlyList<TrainingSample> batch, IReadOnlyList<LabelledConversation> rows, AttentionProbe? probe)
    {
        var withImages = batch.Where(s => s.Image is not null).ToList();
        var names = string.Join(", ", batch.Select(s => s.Name));
        using var recording = probe is null ? null : AttentionProbe.Record(probe);
        using var scope = NewDisposeScope();
        var tokens = withImages.Count == 0 ? null
            : _imageTokens is null ? _model.Module.Encode(Preprocess(withImages)).Tokens : _model.Module.Projector.call(CachedUnprojected(withImages));
        return LossOfTokens(_model, rows, tokens, names).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Composes the projector's first linear layer with the centring and ZCA whitening of the image tokens it reads,
    /// measured on <paramref name="images"/>: <c>W ← W·S</c>, <c>b ← b − W·S·μ</c>, with μ the tokens' mean and
    /// <c>S = α·(Σ + ridge·λ̄·I)^(−1/2)</c> for their covariance Σ (λ̄ its mean eigenvalue; α keeps the tokens' mean
    /// square, the scale at which the LLM's residual stream carries them). Every direction in which the
    /// tokens vary by more than the ridge then reaches the LLM at the same scale, so a few attributes that dominate the
    /// tokens' variance do not crowd out the others while the LLM learns to read them; directions of less variance
    /// (noise) stay damped. Called once before a stage starts, not when it resumes.
    /// </summary>
    /// <param name="images">Pictures of the training distribution (a few hundred: the covariance has D² entries).</param>
    /// <param name="ridge">Share of the mean eigenvalue added to every eigenvalue; &gt; 0.</param>
    /// <param name="batchSize">Pictures encoded together.</param>
    /// <exception cref="MiniGeminiTrainingException">The projector has no linear first layer with a bias, or fewer tokens than their width were given.</exception>
    public void WhitenProjectorInput(IReadOnlyList<ImageInput> images, double ridge = 0.1, int batchSize = 16)
    {
        ArgumentNullException.ThrowIfNull(images);
        ArgumentOutOfRangeException.ThrowIfLessThan(batchSize, 1);
        if (!(ridge > 0 && double.IsFinite(ridge))) throw new ArgumentOutOfRangeException(nameof(ridge), ridge, "The ridge must be a positive share of the mean eigenvalue.");
        var first = _model.Module.Projector.modules().OfType<Linear>().FirstOrDefault()
            ?? throw new MiniGeminiTrainingException($"The projector ({_model.Config.ProjectorType}) has no linear layer to whiten the image tokens into.");
        var (weight, bias) = (first.weight!, first.bias
            ?? throw new MiniGeminiTrainingException($"The projector's ({_model.Config.ProjectorType}) first linear layer has no bias, which the centring needs."));

        SetTraining(false);
        using var mode = no_grad();
        using var scope = NewDisposeScope();
        var tokens = cat(images.Chunk(batchSize).Select(chunk =>
            _model.Module.EncodeUnprojected(_model.Processor.PreprocessImages(chunk)).flatten(0, 1).to(float64)).ToList()); // [M, D]
        long width = tokens.shape[1];
        if (tokens.shape[0] <= width)
            throw new MiniGeminiTrainingException($"{tokens.shape[0]} image tokens cannot whiten tokens of width {width}: give more pictures.");
        var mean = tokens.mean([0]);                                                                    // [D]
        var centred = tokens - mean;
        var covariance = centred.t().matmul(centred) / (tokens.shape[0] - 1);                          // [D, D]
        var (eigenvalues, eigenvectors) = linalg.eigh(covariance);
        eigenvalues = eigenvalues.clamp_min(0);                                                         // rounding can leave tiny negatives
        var damped = eigenvalues + ridge * eigenvalues.mean();
        var whitening = eigenvectors.matmul(diag(damped.rsqrt())).matmul(eigenvectors.t());            // [D, D]
        // The LLM's residual stream carries each image token from layer to layer: scaled down, what the layers add
        // there would drown what the token holds, so the whitened tokens keep the mean square the tokens had.
        whitening = whitening * (tokens.square().sum([1]).mean() / centred.matmul(whitening).square().sum([1]).mean()).sqrt();
        var composed = weight.detach().to(float64).matmul(whitening);                                   // [H, D]
        bias.copy_(bias.detach().to(float64) - composed.matmul(mean));
        weight.copy_(composed);
    }

    /// <summary>
    /// The mean share of the attention of the answer focus head (<see cref="TrainingOptions.AnswerFocusLayer"/>, head 0)
    /// that falls on the image token each focused answer is about (<see cref="TrainingSample.AnswerFocus"/>), at the
    /// position that predicts the answer's first token; NaN when no sample has a focused answer.
    /// </summary>
    public double AnswerFocusShare(IReadOnlyList<TrainingSample> samples, int batchSize = 16)
    {
        ArgumentNullException.ThrowIfNull(samples);
        return MeanShare(samples.Where(s => s.AnswerFocus is not null), batchSize, chunk =>
        {
            var rows = chunk.Select(s => LabelledConversation.Create(s, _model.Tokenizer, _model.Template)).ToList();
            using var probe = AnswerFocusProbe(chunk, rows);
            if (probe is null) return null;
            AnswerLoss(chunk, rows, probe);
            return probe.LogShares.clone();                                                         // [K], outliving the probe
        });
    }

    /// <summary>
    /// The mean of exp(log share) over every entry <paramref name="logSharesOf"/> gives for the chunks of
    /// <paramref name="samples"/> (null: none in that chunk), in eval mode without autograd; NaN when there is none.
    /// </summary>
    double MeanShare(IEnumerable<TrainingSample> samples, int batchSize, Func<TrainingSample[], Tensor?> logSharesOf)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(batchSize, 1);
        SetTraining(false);
        using var mode = inference_mode();
        double sum = 0;
        long count = 0;
        foreach (var chunk in samples.Chunk(batchSize))
        {
            using var scope = NewDisposeScope();
            if (logSharesOf(chunk) is not { } logShares) continue;                                  // [K]
            sum += logShares.exp().sum().item<float>();
            count += logShares.shape[0];
        }
        return count == 0 ? double.NaN : sum / count;
    }

    /// <summary>
    /// The probe of the answer focus term (<see cref="TrainingOptions.AnswerFocusWeight"/>): for each focused answer,
    /// from the position that predicts its first token to its image token; null when the batch has no focused answer.
    /// </summary>
    AttentionProbe? AnswerFocusProbe(IReadOnlyList<TrainingSample> batch, IReadOnlyList<LabelledConversation> rows)
    {
        if (batch.All(s => s.AnswerFocus is null)) return null;
        int perImage = _model.ImageTokensPerImage, layer = _options.AnswerFocusLayer ?? _model.Module.Config.NumHiddenLayers / 2;
        var (rowOf, queries, keys) = (new List<long>(), new List<long>(), new List<long>());
        for (int r = 0; r < batch.Count; r++)
        {
            if (batch[r].AnswerFocus is not { } focus) continue;
            var sample = batch[r];
            if (focus.Count != sample.Exchanges.Count)
                throw new TrainingDataException(sample.Name, $"AnswerFocus has {focus.Count} entries for {sample.Exchanges.Count} exchanges.");
            if (sample.Image is null && focus.Any(f => f is not null))
                throw new TrainingDataException(sample.Name, "AnswerFocus names an image token, but the sample has no image.");
            int slot = Array.IndexOf(rows[r].Ids, ImageSlotTokenizer.ImageTokenIndex);
            for (int e = 0; e < focus.Count; e++)
            {
                if (focus[e] is not { } token) continue;
                if (token < 0 || token >= perImage)
                    throw new TrainingDataException(sample.Name, $"AnswerFocus of exchange {e} is image token {token}, but an image has {perImage} tokens.");
                rowOf.Add(r);
                queries.Add(rows[r].Expanded(rows[r].AnswerStarts[e] - 1, perImage));
                keys.Add(rows[r].Expanded(slot, perImage, token));
            }
        }
        return rowOf.Count == 0 ? null : new AttentionProbe(layer, head: 0, [.. rowOf], [.. queries], [.. keys]);
    }

    /// <summary>The image tokens before the projector <c>[I, N, D]</c>, from the cache or (for pictures not in it) from the frozen vision side.</summary>
    Tensor CachedUnprojected(IReadOnlyList<TrainingSample> samples)
    {
        var keys = samples.Select(s => ImageTokenCache.KeyOf(s.Image!)).ToList();
        var tokens = keys.Select(k => _imageTokens!.TryGet(k, out var t) ? t : null).ToArray();
        var missing = Enumerable.Range(0, samples.Count).Where(i => tokens[i] is null).ToList();
        if (missing.Count == 0) return stack(tokens!);                                          // [I, N, D]
        using var _ = no_grad();
        var fresh = _model.Module.EncodeUnprojected(Preprocess(missing.Select(i => samples[i]).ToList())); // [M, N, D]
        for (int m = 0; m < missing.Count; m++) tokens[missing[m]] = fresh[m];
        var batch = stack(tokens!);                                                             // [I, N, D]
        // Added only now: making room may release an entry this batch still reads.
        for (int m = 0; m < missing.Count; m++) _imageTokens!.Add(keys[missing[m]], fresh[m]);
        return batch;
    }

    Tensor Preprocess(IReadOnlyList<TrainingSample> samples)
    {
        try
        {
            return _model.Processor.PreprocessImages(samples.Select(s => s.Image!).ToList()); // [I, 3, S, S]
        }
        catch (InvalidImageException e)
        {
            throw new TrainingDataException(string.Join(", ", samples.Select(s => s.Name)), $"an image does not decode: {e.Message}", e);
        }
    }

    Tensor PreprocessCrops(IReadOnlyList<TrainingSample> samples)
    {
        try
        {
            return _model.Processor.NormalizeCrops(samples.Select(s => s.Image!).ToList()); // [B, 3, h, w]
        }
        catch (Exception e) when (e is InvalidImageException or ArgumentException)
        {
            throw new TrainingDataException(string.Join(", ", samples.Select(s => s.Name)), $"the crops cannot be batched: {e.Message}", e);
        }
    }

    /// <summary>
    /// The token-label loss of a batch: cross-entropy of the head's logits against each labelled attribute of each
    /// image token, averaged over the labels present (<see cref="LabelledConversation.IgnoreIndex"/> ones do not count).
    /// </summary>
    Tensor TokenLabelLoss(IReadOnlyList<TrainingSample> batch)
    {
        using var scope = NewDisposeScope();
        var (logits, target, miningScores) = TokenLabelLogits(batch);                          // [B, N, ΣC], [B, N, A]
        var classes = _options.TokenLabelClasses!;
        using var ignore = LabelledConversation.IgnoreIndex.ToScalar();
        long counted = target.ne(ignore).sum().item<long>();
        if (counted == 0) throw new TrainingDataException(string.Join(", ", batch.Select(s => s.Name)), "the batch has no token labels to learn.");
        var total = zeros([], logits.dtype, logits.device);
        for (int a = 0, offset = 0; a < classes.Count; offset += classes[a], a++)
            total = total.Plus(nn.functional.cross_entropy(logits.narrow(-1, offset, classes[a]).reshape(-1, classes[a]), // [B·N, C]
                target.select(-1, a).reshape(-1), ignore_index: LabelledConversation.IgnoreIndex, reduction: nn.Reduction.Sum));
        using var perLabel = (1.0 / counted).ToScalar();
        var loss = total.mul(perLabel);
        if (miningScores is not null && _options.MiningFocusWeight > 0 && batch.Any(s => s.MiningFocus is not null))
        {
            using var weight = _options.MiningFocusWeight.ToScalar();
            var logShares = MiningFocusLogShares(batch, miningScores);                               // [K]
            if (logShares.shape[0] > 0) loss = loss.Plus(logShares.mean().neg().mul(weight));
        }
        return loss.MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Per token with a <see cref="TrainingSample.MiningFocus"/> box, log(share of its mining attention inside the box),
    /// <c>[K]</c>: logsumexp of the scores inside minus logsumexp of all.
    /// </summary>
    Tensor MiningFocusLogShares(IReadOnlyList<TrainingSample> batch, Tensor scores)
    {
        using var scope = NewDisposeScope();
        long tokens = scores.shape[1], block = (long)Math.Round(Math.Sqrt(scores.shape[2]));
        long perSide = (long)Math.Round(Math.Sqrt(tokens));
        double side = perSide * block;                                                            // the HR map's side in features
        var inside = new bool[batch.Count * tokens * block * block];
        var boxed = new List<long>();
        for (int b = 0; b < batch.Count; b++)
        {
            var focus = batch[b].MiningFocus;
            if (focus is null) continue;
            if (focus.Count != tokens)
                throw new TrainingDataException(batch[b].Name, $"its mining focus has {focus.Count} boxes but the model makes {tokens} image tokens.");
            for (int t = 0; t < tokens; t++)
            {
                if (focus[t] is not { } box) continue;
                long rowStart = t / perSide * block, columnStart = t % perSide * block;             // the token's block in the HR map
                int found = 0;
                foreach (var (y, x) in FeaturesOf(box, side))
                {
                    long row = y - rowStart, column = x - columnStart;
                    if (row < 0 || row >= block || column < 0 || column >= block) continue;
                    inside[((b * tokens) + t) * block * block + row * block + column] = true;
                    found++;
                }
                if (found == 0) throw new TrainingDataException(batch[b].Name, $"the mining focus box {box} of image token {t} lies outside the token's HR region.");
                boxed.Add(b * tokens + t);
            }
        }
        if (boxed.Count == 0) return zeros([0], scores.dtype, scores.device).MoveToOuterDisposeScope();
        var flat = scores.reshape(-1, block * block);                                             // [B·N, s²]
        var mask = tensor(inside, device: scores.device).view(-1, block * block);                 // [B·N, s²]
        var rows = tensor(boxed.ToArray(), device: scores.device);
        var (kept, keptMask) = (flat.index_select(0, rows), mask.index_select(0, rows));          // [K, s²]
        using var outside = float.NegativeInfinity.ToScalar();
        var logInside = kept.masked_fill(keptMask.logical_not(), outside).logsumexp(-1);          // [K]
        return logInside.sub(kept.logsumexp(-1)).MoveToOuterDisposeScope();
    }

    /// <summary>The (row, column) of each feature of a square map <paramref name="side"/> features wide that the box touches.</summary>
    static IEnumerable<(long Row, long Column)> FeaturesOf(FocusBox box, double side)
    {
        // The tolerance keeps an edge that falls on a feature border from adding a row or column.
        for (long y = (long)Math.Floor(box.Top * side + 1e-9); y < (long)Math.Ceiling((box.Top + box.Height) * side - 1e-9); y++)
        for (long x = (long)Math.Floor(box.Left * side + 1e-9); x < (long)Math.Ceiling((box.Left + box.Width) * side - 1e-9); x++)
            yield return (y, x);
    }

    /// <summary>
    /// Crops with a <see cref="TrainingSample.MiningFocus"/> box → the head's attention pooling of their fused map, read as
    /// mining reads its region (<see cref="LabelHead.Attend"/>), with its scores for the focus term. Crops without a box
    /// → the map's maximum per channel (a channel fires where the detail is; an average would dilute it).
    /// </summary>
    (Tensor Pooled, Tensor? Scores) PooledCrops(IReadOnlyList<TrainingSample> batch)
    {
        var crops = PreprocessCrops(batch);                                                       // [B, 3, h, w]
        int boxed = batch.Count(s => s.MiningFocus is not null);
        // A channel's maximum over the positions: a detail a few features wide is what a channel fires on, and an
        // average would dilute it in the crop's background.
        if (boxed == 0) return (_model.Module.EncodeHrFused(crops).amax([2, 3]).unsqueeze(1), null); // [B, 1, Da]
        if (boxed != batch.Count)
            throw new TrainingDataException(string.Join(", ", batch.Where(s => s.MiningFocus is null).Select(s => s.Name)), "crops with and without a focus box cannot share a batch.");
        if (crops.shape[2] != crops.shape[3]) throw new TrainingDataException(batch[0].Name, $"a crop with a focus box must be square, not {crops.shape[3]}×{crops.shape[2]} pixels.");
        return _tokenHead!.Attend(_model.Module.EncodeHrFused(crops));                                   // [B, 1, Da], [B, 1, h·w]
    }

    /// <summary>
    /// The head's logits <c>[B, N, ΣC]</c> on a batch's image tokens (N = 1 for crops: the pooled HR map) and the
    /// checked labels <c>[B, N, A]</c>.
    /// </summary>
    (Tensor Logits, Tensor Target, Tensor? MiningScores) TokenLabelLogits(IReadOnlyList<TrainingSample> batch)
    {
        var classes = _options.TokenLabelClasses!;
        bool crops = _options.Stage.Objective == TrainingObjective.HrCropLabels;
        int perImage = crops ? 1 : _model.ImageTokensPerImage;
        var labels = new long[batch.Count * perImage * classes.Count];
        int k = 0;
        foreach (var sample in batch)
        {
            if (sample.Image is null || sample.TokenLabels is null)
                throw new TrainingDataException(sample.Name, $"stage '{_options.Stage.Name}' learns token labels, but the sample has {(sample.Image is null ? "no image" : "no token labels")}.");
            if (sample.TokenLabels.Count != perImage)
                throw new TrainingDataException(sample.Name, crops ? $"a crop has one row of labels, not {sample.TokenLabels.Count}."
                    : $"it labels {sample.TokenLabels.Count} image tokens but the model makes {perImage} per image.");
            for (int t = 0; t < perImage; t++)
            {
                var row = sample.TokenLabels[t] ?? throw new TrainingDataException(sample.Name, $"image token {t} has no labels.");
                if (row.Count != classes.Count)
                    throw new TrainingDataException(sample.Name, $"image token {t} has {row.Count} labels but there are {classes.Count} attributes.");
                for (int a = 0; a < classes.Count; a++)
                {
                    int label = row[a];
                    if (label != LabelledConversation.IgnoreIndex && (label < 0 || label >= classes[a]))
                        throw new TrainingDataException(sample.Name, $"image token {t}, attribute {a}: label {label} is outside [0, {classes[a]}).");
                    labels[k++] = label;
                }
            }
        }
        var (tokens, miningScores) = crops ? PooledCrops(batch)                                // [B, 1, Da], [B, 1, h·w]
            : _model.Module.EncodeWithMiningScores(Preprocess(batch));                                 // [B, N, D], [B, N, s²]
        var logits = _tokenHead!.Classify(tokens);                                               // [B, N, ΣC]
        return (logits, tensor(labels, device: logits.device).view(batch.Count, perImage, classes.Count), miningScores);
    }

    /// <summary>
    /// For a <see cref="TrainingObjective.TokenLabels"/> or <see cref="TrainingObjective.HrCropLabels"/> stage: per
    /// attribute, the share of the labelled tokens (or crops) of
    /// <paramref name="samples"/> (e.g. samples the training never saw) whose class the head's arg-max gets right.
    /// </summary>
    /// <exception cref="InvalidOperationException">The stage does not learn token labels.</exception>
    public IReadOnlyList<double> TokenLabelAccuracy(IReadOnlyList<TrainingSample> samples, int batchSize = 16)
    {
        ArgumentNullException.ThrowIfNull(samples);
        ArgumentOutOfRangeException.ThrowIfLessThan(batchSize, 1);
        if (_tokenHead is null) throw new InvalidOperationException($"Stage '{_options.Stage.Name}' learns answers, not token labels.");
        var classes = _options.TokenLabelClasses!;
        var (right, labelled) = (new long[classes.Count], new long[classes.Count]);
        SetTraining(false);
        using var mode = inference_mode();
        using var ignore = LabelledConversation.IgnoreIndex.ToScalar();
        foreach (var chunk in samples.Chunk(batchSize))
        {
            using var scope = NewDisposeScope();
            var (logits, target, _) = TokenLabelLogits(chunk);
            for (int a = 0, offset = 0; a < classes.Count; offset += classes[a], a++)
            {
                var truth = target.select(-1, a);                                                  // [B, N]
                var known = truth.ne(ignore);
                right[a] += logits.narrow(-1, offset, classes[a]).argmax(-1).eq(truth).logical_and(known).sum().item<long>();
                labelled[a] += known.sum().item<long>();
            }
        }
        return right.Zip(labelled, (r, n) => n == 0 ? double.NaN : (double)r / n).ToList();
    }

    /// <summary>
    /// For a model with patch info mining: the mean share of a token's mining attention that falls inside its
    /// <see cref="TrainingSample.MiningFocus"/> box, over the boxed tokens of <paramref name="samples"/> (whole pictures,
    /// as <see cref="TrainingObjective.TokenLabels"/> takes them; NaN without any box).
    /// </summary>
    public double MiningFocusShare(IReadOnlyList<TrainingSample> samples, int batchSize = 16)
    {
        ArgumentNullException.ThrowIfNull(samples);
        return MeanShare(samples.Where(s => s.MiningFocus is not null), batchSize, chunk =>
        {
            var (_, scores) = _model.Module.EncodeWithMiningScores(Preprocess(chunk));
            return scores is null ? null : MiningFocusLogShares(chunk, scores);                    // [K]; null: no mining
        });
    }

    /// <summary>The loss of labelled rows whose image slots take, in order, the images of <paramref name="hr"/> <c>[I, 3, S, S]</c>.</summary>
    internal static Tensor Loss(MiniGeminiModel model, IReadOnlyList<LabelledConversation> rows, Tensor? hr, string names)
    {
        using var scope = NewDisposeScope();
        using var mode = inference_mode(!model.Module.training);
        return LossOfTokens(model, rows, hr is null ? null : model.Module.Encode(hr).Tokens, names).MoveToOuterDisposeScope(); // tokens [I, N, H]
    }

    /// <summary>The loss of labelled rows whose image slots take, in order, the projected image tokens <c>[I, N, H]</c>.</summary>
    static Tensor LossOfTokens(MiniGeminiModel model, IReadOnlyList<LabelledConversation> rows, Tensor? imageTokens, string names)
    {
        using var scope = NewDisposeScope();
        var llm = model.Module;
        using var mode = inference_mode(!llm.training);
        int perImage = model.ImageTokensPerImage;

        var labels = rows.Select(row => ExpandLabels(row.Ids, row.Labels, perImage)).ToList();
        // Checked on the host labels, before any LLM work: the first position of a row is never a target.
        if (labels.All(l => l.Skip(1).All(label => label == LabelledConversation.IgnoreIndex)))
            throw new TrainingDataException(names, "the batch has no answer tokens to learn.");
        var embeds = llm.SpliceRows([.. rows.Select(r => r.Ids)], imageTokens);                 // [L_b, H] each
        long length = embeds.Max(e => e.shape[0]), hidden = embeds[0].shape[1];
        var padded = stack(embeds.Select(e => e.shape[0] == length ? e
            : cat([e, zeros([length - e.shape[0], hidden], e.dtype, e.device)], 0)).ToArray()); // [B, T, H]
        var target = tensor(labels.SelectMany(l => l.Concat(Enumerable.Repeat((long)LabelledConversation.IgnoreIndex, (int)length - l.Length))).ToArray(),
            device: padded.device).view(rows.Count, length);                                 // [B, T]
        var positions = arange(length, dtype: ScalarType.Int64, device: padded.device).expand(rows.Count, length); // [B, T]
        // Right padding: causal attention alone keeps every real position from seeing the padding after it.
        var logits = llm.Forward(padded, positions, attentionMask: null, cache: null, allLogits: true); // [B, T, V]
        var predicted = logits.narrow(1, 0, length - 1).reshape(-1, logits.shape[2]);           // [B·(T−1), V]
        var next = target.narrow(1, 1, length - 1).reshape(-1);                                 // [B·(T−1)]
        return nn.functional.cross_entropy(predicted, next, ignore_index: LabelledConversation.IgnoreIndex).MoveToOuterDisposeScope();
    }

    /// <summary>Labels aligned with the spliced sequence: each image slot becomes its N positions, all ignored.</summary>
    static long[] ExpandLabels(int[] ids, int[] labels, int perImage)
    {
        var expanded = new List<long>(ids.Length + perImage);
        for (int i = 0; i < ids.Length; i++)
        {
            if (ids[i] == ImageSlotTokenizer.ImageTokenIndex) expanded.AddRange(Enumerable.Repeat((long)LabelledConversation.IgnoreIndex, perImage));
            else expanded.Add(labels[i]);
        }
        return expanded.ToArray();
    }

    /// <summary>
    /// Saves the model in the MGM layout: config.json, generation_config.json and tokenizer files as the model was
    /// loaded with, model.safetensors with every tensor (towers embedded), and the CLIP tower's config in a folder of
    /// the name config.json gives it, so that <see cref="MiniGeminiBuilder.FromPretrained"/> loads it unchanged.
    /// </summary>
    public void Save(string folder)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(folder);
        var (source, clipFolder) = _model.Source ?? throw new InvalidOperationException("The model was not loaded from a folder, so there is no config to save with it.");
        var temporary = folder.TrimEnd('/', '\\') + ".saving";
        if (Directory.Exists(temporary)) Directory.Delete(temporary, recursive: true);
        Directory.CreateDirectory(temporary);
        foreach (var file in Directory.EnumerateFiles(source).Where(IsModelMetadata))
            File.Copy(file, Path.Combine(temporary, Path.GetFileName(file)));
        if (clipFolder is not null && _model.Config.VisionTower is { } tower)
        {
            var towerFolder = Directory.CreateDirectory(Path.Combine(temporary, Path.GetFileName(tower.TrimEnd('/', '\\')))).FullName;
            foreach (var name in new[] { "config.json", "preprocessor_config.json" })
                if (File.Exists(Path.Combine(clipFolder, name))) File.Copy(Path.Combine(clipFolder, name), Path.Combine(towerFolder, name));
        }
        using (var scope = NewDisposeScope())
        {
            var tensors = _model.Module.CheckpointParameters().ToDictionary(x => x.Key, x => x.Parameter.detach().cpu());
            SafetensorsWriter.Write(Path.Combine(temporary, "model.safetensors"), tensors, new Dictionary<string, string> { ["format"] = "pt" });
        }
        // Replace the folder's model files only once the new ones are complete.
        Directory.CreateDirectory(folder);
        foreach (var entry in Directory.EnumerateFileSystemEntries(temporary))
        {
            var target = Path.Combine(folder, Path.GetFileName(entry));
            if (File.Exists(entry)) File.Move(entry, target, overwrite: true);
            else
            {
                if (Directory.Exists(target)) Directory.Delete(target, recursive: true);
                Directory.Move(entry, target);
            }
        }
        Directory.Delete(temporary, recursive: true);
    }

    static bool IsModelMetadata(string path)
    {
        var name = Path.GetFileName(path);
        return name is "config.json" or "generation_config.json" or "special_tokens_map.json" || name.StartsWith("tokenizer", StringComparison.Ordinal);
    }

    void SaveCheckpoint(string folder, IReadOnlyList<double> losses)
    {
        var temporary = folder + ".tmp";
        if (Directory.Exists(temporary)) Directory.Delete(temporary, recursive: true);
        Save(temporary);
        _optimizer.save_state_dict(Path.Combine(temporary, OptimizerFile));
        _tokenHead?.save(Path.Combine(temporary, TokenHeadFile));
        WriteLosses(Path.Combine(temporary, StateFile), losses);
        if (Directory.Exists(folder)) Directory.Delete(folder, recursive: true);
        Directory.Move(temporary, folder);
    }

    /// <summary>Checks the output folder and, when it holds a checkpoint, loads it: returns the losses of the steps already done.</summary>
    List<double> PrepareOutput(string output, string checkpoint)
    {
        if (Directory.Exists(checkpoint))
        {
            var losses = ReadLosses(Path.Combine(checkpoint, StateFile));
            if (losses.Count > _options.Steps)
                throw new MiniGeminiTrainingException($"{checkpoint} is at step {losses.Count}, beyond this run's {_options.Steps} steps.");
            using var source = Checkpoint.Open(checkpoint);
            using (no_grad())
                foreach (var (key, p) in _model.Module.CheckpointParameters())
                {
                    if (!source.TryGetInfo(key, out _)) throw new MiniGeminiTrainingException($"{checkpoint}: the checkpoint has no '{key}'; it belongs to another model.");
                    using var stored = source.Load(key);
                    if (!stored.shape.SequenceEqual(p.shape))
                        throw new MiniGeminiTrainingException($"{checkpoint}: '{key}' is {TensorHelpers.Shape(stored.shape)} but the model's is {TensorHelpers.Shape(p.shape)}.");
                    p.copy_(stored);
                }
            _model.Module.Mining?.RefoldWeights();
            _optimizer.load_state_dict(Path.Combine(checkpoint, OptimizerFile));
            _tokenHead?.load(Path.Combine(checkpoint, TokenHeadFile));
            return losses;
        }
        if (Directory.Exists(output) && Directory.EnumerateFileSystemEntries(output).Any())
            throw new MiniGeminiTrainingException($"The output folder {Path.GetFullPath(output)} already exists and holds no checkpoint of a run to resume; choose a new folder.");
        return [];
    }

    static void WriteLosses(string path, IReadOnlyList<double> losses) =>
        File.WriteAllText(path, JsonSerializer.Serialize(new { step = losses.Count, losses }));

    static List<double> ReadLosses(string path)
    {
        try
        {
            using var json = JsonDocument.Parse(File.ReadAllText(path));
            return json.RootElement.GetProperty("losses").EnumerateArray().Select(e => e.GetDouble()).ToList();
        }
        catch (Exception e) when (e is IOException or JsonException or KeyNotFoundException or InvalidOperationException)
        {
            throw new MiniGeminiTrainingException($"{path}: the training state cannot be read ({e.Message}).", e);
        }
    }

    internal void SetTraining(bool training)
    {
        _model.ClearConversationCache(); // kept keys, values and image tokens belong to the weights before the change
        _model.Module.train(training);
    }

    /// <summary>Releases the optimizer state; the model stays usable (in eval mode).</summary>
    public void Dispose()
    {
        _optimizer.Dispose();
        _tokenHead?.Dispose();
        _imageTokens?.Dispose();
    }
}
