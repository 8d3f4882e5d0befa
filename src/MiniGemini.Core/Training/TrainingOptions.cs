namespace MiniGemini.Training;

/// <summary>
/// Settings of a training run: AdamW with decoupled weight decay (none on norms, biases and other 1-D tensors),
/// linear warm-up then cosine decay to <see cref="MinLearningRate"/>, gradient clipping and accumulation.
/// </summary>
public sealed record TrainingOptions
{
    /// <summary>What learns (default: <see cref="TrainingStage.Finetune"/>).</summary>
    public TrainingStage Stage { get; init; } = TrainingStage.Finetune;
    /// <summary>Optimizer steps.</summary>
    public int Steps { get; init; } = 1000;
    /// <summary>Conversations per micro-batch.</summary>
    public int BatchSize { get; init; } = 8;
    /// <summary>Micro-batches whose gradients are summed before a step (the effective batch is BatchSize × this).</summary>
    public int GradientAccumulation { get; init; } = 1;
    /// <summary>Peak learning rate, reached after <see cref="WarmupSteps"/>.</summary>
    public double LearningRate { get; init; } = 1e-3;
    /// <summary>
    /// The vision towers' (CLIP and ConvNeXt) learning rate as a share of the schedule's, as MGM's
    /// <c>mm_vision_tower_lr</c>: encoders trained from scratch at the LLM's rate tend to drift to features that no
    /// longer depend on the picture.
    /// </summary>
    public double TowerLearningRateScale { get; init; } = 1.0;
    /// <summary>Learning rate at the last step.</summary>
    public double MinLearningRate { get; init; } = 1e-4;
    /// <summary>Steps of linear warm-up from 0.</summary>
    public int WarmupSteps { get; init; } = 50;
    /// <summary>AdamW weight decay for matrices (2-D and larger); 1-D tensors get none.</summary>
    public double WeightDecay { get; init; } = 0.05;
    /// <summary>AdamW β₁.</summary>
    public double Beta1 { get; init; } = 0.9;
    /// <summary>AdamW β₂.</summary>
    public double Beta2 { get; init; } = 0.99;
    /// <summary>Gradients are scaled down to this global L2 norm when larger; 0 turns clipping off.</summary>
    public double GradientClip { get; init; } = 1.0;
    /// <summary>Seed of the parameter initialisation order and of libtorch's generator.</summary>
    public long Seed { get; init; } = 1;
    /// <summary>
    /// For a <see cref="TrainingObjective.TokenLabels"/> or <see cref="TrainingObjective.HrCropLabels"/> stage: the number
    /// of classes of each labelled attribute (e.g. present, shape, colour, digit); the head has one output per class.
    /// </summary>
    public IReadOnlyList<int>? TokenLabelClasses { get; init; }
    /// <summary>
    /// For a <see cref="TrainingObjective.TokenLabels"/> stage whose samples give <see cref="TrainingSample.MiningFocus"/>:
    /// the weight of the focus term, the mean over the boxed tokens of −log(share of the token's mining attention that
    /// falls inside its box), added to the label loss. A detail a few HR features wide is otherwise found only when the
    /// label loss happens to sharpen an attention that starts spread over thousands of features.
    /// </summary>
    public double MiningFocusWeight { get; init; } = 1.0;
    /// <summary>
    /// For an <see cref="TrainingObjective.Answers"/> stage whose samples give <see cref="TrainingSample.AnswerFocus"/>:
    /// the weight of the answer focus term, the mean over the focused answers of −log(attention probability from the
    /// position that predicts the answer's first token to the image token the answer is about), read from head 0 of
    /// layer <see cref="AnswerFocusLayer"/>. 0 (the default) turns it off, which is MGM's loss. It teaches the LLM to
    /// find an image token by what it shows, which the answer loss alone teaches slowly: until the attention finds the
    /// token, the answer read from it is noise, and until the answer is right, nothing pulls the attention onto it.
    /// </summary>
    public double AnswerFocusWeight { get; init; }
    /// <summary>The decoder layer (0-based) whose head 0 <see cref="AnswerFocusWeight"/> pulls, or null for the middle layer (layers / 2).</summary>
    public int? AnswerFocusLayer { get; init; }
    /// <summary>A resumable checkpoint is written every this many steps (0: only at the end).</summary>
    public int CheckpointEvery { get; init; } = 100;
    /// <summary>
    /// For a stage that trains neither tower nor mining: how many pictures' image tokens (before the projector) the
    /// trainer keeps, keyed by the picture's bytes, so that a picture seen again costs no vision forward (0: none;
    /// the oldest entry goes first). Worth it when the stream repeats pictures.
    /// </summary>
    public int ImageTokenCacheSize { get; init; }

    /// <summary>The learning rate at <paramref name="step"/> (0-based): warm-up, then cosine to the minimum.</summary>
    public double LearningRateAt(int step)
    {
        if (step < WarmupSteps) return LearningRate * (step + 1) / WarmupSteps;
        if (Steps <= WarmupSteps) return LearningRate;
        double progress = Math.Min(1.0, (double)(step - WarmupSteps) / Math.Max(1, Steps - 1 - WarmupSteps));
        return MinLearningRate + 0.5 * (1 + Math.Cos(Math.PI * progress)) * (LearningRate - MinLearningRate);
    }

    internal void Validate()
    {
        static void Check(bool ok, string name, object value, string rule)
        {
            if (!ok) throw new ArgumentOutOfRangeException(name, value, $"TrainingOptions.{name} must be {rule} (got {value}).");
        }
        ArgumentNullException.ThrowIfNull(Stage);
        Check(Steps >= 1, nameof(Steps), Steps, "≥ 1");
        Check(BatchSize >= 1, nameof(BatchSize), BatchSize, "≥ 1");
        Check(GradientAccumulation >= 1, nameof(GradientAccumulation), GradientAccumulation, "≥ 1");
        Check(LearningRate > 0 && double.IsFinite(LearningRate), nameof(LearningRate), LearningRate, "positive and finite");
        Check(MinLearningRate >= 0 && MinLearningRate <= LearningRate, nameof(MinLearningRate), MinLearningRate, "in [0, LearningRate]");
        Check(TowerLearningRateScale > 0 && double.IsFinite(TowerLearningRateScale), nameof(TowerLearningRateScale), TowerLearningRateScale, "positive and finite");
        Check(WarmupSteps >= 0, nameof(WarmupSteps), WarmupSteps, "≥ 0");
        Check(WeightDecay >= 0 && double.IsFinite(WeightDecay), nameof(WeightDecay), WeightDecay, "≥ 0");
        Check(Beta1 is >= 0 and < 1, nameof(Beta1), Beta1, "in [0, 1)");
        Check(Beta2 is >= 0 and < 1, nameof(Beta2), Beta2, "in [0, 1)");
        Check(GradientClip >= 0 && double.IsFinite(GradientClip), nameof(GradientClip), GradientClip, "≥ 0");
        if (Stage.Objective != TrainingObjective.Answers)
            Check(TokenLabelClasses is { Count: > 0 } classes && classes.All(c => c >= 2), nameof(TokenLabelClasses),
                TokenLabelClasses is null ? "null" : $"[{string.Join(", ", TokenLabelClasses)}]", $"a non-empty list of class counts ≥ 2 for stage '{Stage.Name}'");
        Check(MiningFocusWeight >= 0 && double.IsFinite(MiningFocusWeight), nameof(MiningFocusWeight), MiningFocusWeight, "≥ 0");
        Check(AnswerFocusWeight >= 0 && double.IsFinite(AnswerFocusWeight), nameof(AnswerFocusWeight), AnswerFocusWeight, "≥ 0");
        Check(AnswerFocusLayer is null or >= 0, nameof(AnswerFocusLayer), AnswerFocusLayer?.ToString() ?? "null", "≥ 0");
        Check(CheckpointEvery >= 0, nameof(CheckpointEvery), CheckpointEvery, "≥ 0");
        Check(ImageTokenCacheSize >= 0, nameof(ImageTokenCacheSize), ImageTokenCacheSize, "≥ 0");
        if (ImageTokenCacheSize > 0 && Stage.TrainsVision)
            throw new ArgumentException($"TrainingOptions.ImageTokenCacheSize is {ImageTokenCacheSize}, but stage '{Stage.Name}' trains the towers or mining, " +
                "which would change the cached image tokens; use it with a stage that trains neither.", nameof(ImageTokenCacheSize));
    }
}

/// <summary>Where a run stands, reported after every optimizer step.</summary>
/// <param name="Step">Steps done (1-based).</param>
/// <param name="Steps">Steps in the run.</param>
/// <param name="Loss">Mean masked cross-entropy of this step's batch.</param>
/// <param name="LearningRate">The learning rate this step used.</param>
/// <param name="SamplesPerSecond">Conversations per second over this step.</param>
/// <param name="Elapsed">Time since the run (or its resumption) started.</param>
/// <param name="StartStep">Steps already done when the run (or its resumption) started: <c>Elapsed</c> covers
/// <c>Step - StartStep</c> steps.</param>
public sealed record TrainingProgress(int Step, int Steps, double Loss, double LearningRate, double SamplesPerSecond, TimeSpan Elapsed, int StartStep = 0);
