using MiniGemini.Checkpoints;

namespace MiniGemini.Training;

/// <summary>What a stage learns from.</summary>
public enum TrainingObjective
{
    /// <summary>MGM's loss: next-token cross-entropy on the answers of each conversation.</summary>
    Answers,
    /// <summary>
    /// Cross-entropy of a linear head on each image token before the projector, against the attribute labels that
    /// <see cref="TrainingSample.TokenLabels"/> gives per token: pretraining for towers that come without weights.
    /// </summary>
    TokenLabels,
    /// <summary>
    /// Cross-entropy of a linear head on the HR tower's fused map of a small crop of a picture, against the crop's labels
    /// (<see cref="TrainingSample.TokenLabels"/> with one row): the HR tower alone learns detail such as a digit from crops
    /// that cost a fraction of a whole HR image. With a <see cref="TrainingSample.MiningFocus"/> box the head reads the map
    /// as patch info mining will (attention over the LayerNorm-standardised features, pulled onto the box by the focus
    /// term); without one it takes the map's maximum per channel.
    /// </summary>
    HrCropLabels,
}

/// <summary>
/// Which parameters learn, by their key prefix in the MGM checkpoint (the names config.json and safetensors use).
/// The paper's two stages are presets: <see cref="Pretrain"/> (stage 1: patch info mining and the projector learn,
/// towers and LLM are frozen) and <see cref="Finetune"/> (stage 2: the LLM learns too).
/// </summary>
public sealed record TrainingStage
{
    /// <summary>Patch info mining (<c>model.vlm_uni_*</c>).</summary>
    public const string MiningPrefix = MgmCheckpointKeys.Mining;
    /// <summary>The projector (<c>model.mm_projector.</c>).</summary>
    public const string ProjectorPrefix = MgmCheckpointKeys.Projector;
    /// <summary>The CLIP (LR) tower (<c>model.vision_tower.</c>).</summary>
    public const string VisionTowerPrefix = MgmCheckpointKeys.VisionTower;
    /// <summary>The ConvNeXt (HR) tower (<c>model.vision_tower_aux.</c>).</summary>
    public const string AuxVisionTowerPrefix = MgmCheckpointKeys.AuxVisionTower;
    /// <summary>The language model: embeddings, layers, final norm (<c>model.embed_tokens.</c>, …) and <c>lm_head.</c>.</summary>
    public static IReadOnlyList<string> LanguageModelPrefixes { get; } = ["model.embed_tokens.", "model.layers.", "model.norm.", "lm_head."];

    /// <summary>The preset's name, for messages and logs.</summary>
    public required string Name { get; init; }

    /// <summary>Key prefixes of the parameters that learn; every other parameter is frozen.</summary>
    public required IReadOnlyList<string> TrainablePrefixes { get; init; }

    /// <summary>The loss the stage minimises (default: <see cref="TrainingObjective.Answers"/>).</summary>
    public TrainingObjective Objective { get; init; } = TrainingObjective.Answers;

    /// <summary>Stage 1 of the paper: mining and projector learn; towers and LLM are frozen.</summary>
    public static TrainingStage Pretrain { get; } = new() { Name = "pretrain", TrainablePrefixes = [MiningPrefix, ProjectorPrefix] };

    /// <summary>Stage 2 of the paper: mining, projector and the LLM learn; the towers are frozen.</summary>
    public static TrainingStage Finetune { get; } = new() { Name = "finetune", TrainablePrefixes = [MiningPrefix, ProjectorPrefix, .. LanguageModelPrefixes] };

    /// <summary>
    /// Stage 2 with patch info mining kept as the vision stage left it: the projector and the LLM learn. The image
    /// tokens before the projector then depend on the picture alone, so <see cref="TrainingOptions.ImageTokenCacheSize"/>
    /// can keep them.
    /// </summary>
    public static TrainingStage FinetuneLanguage { get; } = new() { Name = "finetune-language", TrainablePrefixes = [ProjectorPrefix, .. LanguageModelPrefixes] };

    /// <summary>
    /// Only the LLM learns; towers, mining and projector stay as they are. From scratch this comes first: the LLM learns
    /// to read image tokens while they still vary with the image (trained vision parts at that point would drift to
    /// image-independent features that the LLM uses as extra prompt tokens).
    /// </summary>
    public static TrainingStage LanguageModel { get; } = new() { Name = "language", TrainablePrefixes = LanguageModelPrefixes };

    /// <summary>
    /// Before the paper's stages, for towers without pretrained weights: the towers and mining learn to put each
    /// image token's labelled attributes into it (<see cref="TrainingObjective.TokenLabels"/>), as MGM's encoders come
    /// pretrained; projector and LLM are untouched.
    /// </summary>
    public static TrainingStage Vision { get; } = new()
    {
        Name = "vision", TrainablePrefixes = [VisionTowerPrefix, AuxVisionTowerPrefix, MiningPrefix], Objective = TrainingObjective.TokenLabels,
    };

    /// <summary>
    /// <see cref="Vision"/> with the ConvNeXt kept as it is (e.g. after <see cref="HrCrops"/>): the CLIP tower and mining
    /// learn the per-token labels, mining learning where in its HR region the tower's features hold them.
    /// </summary>
    public static TrainingStage VisionMining { get; } = new()
    {
        Name = "vision-mining", TrainablePrefixes = [VisionTowerPrefix, MiningPrefix], Objective = TrainingObjective.TokenLabels,
    };

    /// <summary>
    /// Before <see cref="Vision"/>, for an HR tower without pretrained weights: the ConvNeXt alone learns the labels of
    /// small crops (<see cref="TrainingObjective.HrCropLabels"/>), e.g. the digit a crop shows, at a fraction of the cost
    /// of whole HR images.
    /// </summary>
    public static TrainingStage HrCrops { get; } = new()
    {
        Name = "hr-crops", TrainablePrefixes = [AuxVisionTowerPrefix], Objective = TrainingObjective.HrCropLabels,
    };

    /// <summary>Everything learns: towers, mining, projector, LLM (a model trained from scratch).</summary>
    public static TrainingStage Full { get; } = new()
    {
        Name = "full", TrainablePrefixes = [VisionTowerPrefix, AuxVisionTowerPrefix, MiningPrefix, ProjectorPrefix, .. LanguageModelPrefixes],
    };

    /// <summary>This stage with the CLIP and/or ConvNeXt tower trainable as well (MGM's <c>optimize_vision_tower*</c>).</summary>
    public TrainingStage WithTowers(bool visionTower = true, bool auxVisionTower = true) => this with
    {
        Name = Name + (visionTower ? "+vision_tower" : "") + (auxVisionTower ? "+vision_tower_aux" : ""),
        TrainablePrefixes = TrainablePrefixes
            .Concat(visionTower ? [VisionTowerPrefix] : [])
            .Concat(auxVisionTower ? [AuxVisionTowerPrefix] : [])
            .Distinct().ToList(),
    };

    /// <summary>The preset called <paramref name="name"/>: hr-crops, vision, vision-mining, pretrain (alias stage1), finetune (stage2), finetune-language, language or full.</summary>
    /// <exception cref="ArgumentException">Unknown name.</exception>
    public static TrainingStage Get(string name) => name.Trim().ToLowerInvariant() switch
    {
        "pretrain" or "stage1" => Pretrain,
        "finetune" or "stage2" => Finetune,
        "finetune-language" => FinetuneLanguage,
        "full" => Full,
        "language" => LanguageModel,
        "vision" => Vision,
        "vision-mining" => VisionMining,
        "hr-crops" => HrCrops,
        _ => throw new ArgumentException($"Unknown training stage '{name}': use hr-crops, vision, vision-mining, pretrain (stage1), finetune (stage2), finetune-language, language or full.", nameof(name)),
    };

    /// <summary>Whether the parameter stored under <paramref name="key"/> learns in this stage.</summary>
    public bool Trains(string key) => TrainablePrefixes.Any(p => key.StartsWith(p, StringComparison.Ordinal));

    /// <summary>Whether the stage trains a tower or patch info mining (what the image tokens before the projector depend on).</summary>
    public bool TrainsVision => TrainablePrefixes.Any(p => new[] { VisionTowerPrefix, AuxVisionTowerPrefix, MiningPrefix }.Any(v =>
        p.StartsWith(v, StringComparison.Ordinal) || v.StartsWith(p, StringComparison.Ordinal)));

    /// <summary>Whether a checkpoint key belongs to one of the vision towers (CLIP or ConvNeXt).</summary>
    internal static bool IsTower(string key) =>
        key.StartsWith(VisionTowerPrefix, StringComparison.Ordinal) || key.StartsWith(AuxVisionTowerPrefix, StringComparison.Ordinal);
}
