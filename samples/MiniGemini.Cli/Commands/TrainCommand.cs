using System.CommandLine;
using System.Text.Json;
using MiniGemini.Training;
using MiniGemini.Training.DetailShapes;

namespace MiniGemini.Cli.Commands;

/// <summary>
/// <c>train</c>: trains a new Mini-Gemini (or the LR-only baseline) from scratch on the Detail Shapes task and saves
/// it in the MGM checkpoint layout. A run that stopped resumes from its last checkpoint when started again.
/// </summary>
static class TrainCommand
{
    /// <summary>Model shapes: the demo model and its LR-only baseline, and a tiny one for quick checks.</summary>
    static readonly Dictionary<string, ModelBlueprint> Variants = new(StringComparer.OrdinalIgnoreCase)
    {
        ["mgm"] = new ModelBlueprint(),
        ["lr-only"] = new ModelBlueprint { AuxDims = null },
        ["tiny"] = new ModelBlueprint
        {
            LrImageSize = 56, PatchSize = 28, VisionWidth = 32, VisionLayers = 1, VisionHeads = 2, HrImageSize = 224, AuxDims = [8, 16, 16, 16],
            Hidden = 64, Layers = 2, Heads = 2, Intermediate = 128,
        },
    };

    public static Command Define(CliDefinition cli)
    {
        var output = new Option<string>("--out") { Description = "Folder for checkpoints and the trained model (must be new, or hold a run to resume).", HelpName = "FOLDER", Required = true };
        var task = new Option<string>("--task") { Description = "Training task: detail-shapes.", DefaultValueFactory = _ => "detail-shapes" };
        var variant = new Option<string>("--variant") { Description = $"Model to train: {string.Join(", ", Variants.Keys)} (lr-only: the same without HR tower and mining).", DefaultValueFactory = _ => "mgm" };
        var stage = new Option<string>("--stage") { Description = "What learns: hr-crops (the HR tower learns the digit from small crops), vision (towers and mining learn each cell's shape, colour and digit from labels, as pretraining), vision-mining (the same with the HR tower frozen), full (everything), language (the LLM only), pretrain (stage 1: mining + projector), finetune (stage 2: + LLM; towers frozen), finetune-language (stage 2 with mining frozen too: projector and LLM).", DefaultValueFactory = _ => "finetune" };
        var steps = new Option<int>("--steps") { Description = "Optimizer steps.", CustomParser = CountOption.Parser("--steps", 1), DefaultValueFactory = _ => 1500 };
        var batch = new Option<int>("--batch-size") { Description = "Conversations per step.", CustomParser = CountOption.Parser("--batch-size", 1), DefaultValueFactory = _ => 16 };
        var accumulation = new Option<int>("--accumulation") { Description = "Micro-batches per step (gradient accumulation).", CustomParser = CountOption.Parser("--accumulation", 1), DefaultValueFactory = _ => 1 };
        var learningRate = new Option<double>("--lr") { Description = "Peak learning rate (AdamW).", DefaultValueFactory = _ => 1e-3 };
        var towerScale = new Option<double>("--tower-lr-scale") { Description = "The vision towers' learning rate as a share of --lr.", DefaultValueFactory = _ => 1.0 };
        var warmup = new Option<int>("--warmup") { Description = "Warm-up steps.", CustomParser = CountOption.Parser("--warmup", 0), DefaultValueFactory = _ => 50 };
        var from = new Option<string?>("--from") { Description = "Start from this trained model (e.g. the output of an earlier stage) instead of a new one; --variant is then ignored.", HelpName = "FOLDER" };
        var exchanges = new Option<int>("--exchanges") { Description = "Questions per training conversation at most.", CustomParser = CountOption.Parser("--exchanges", 1), DefaultValueFactory = _ => 12 };
        var llmWidth = new Option<int?>("--llm-width") { Description = "LLM width of a new model (its MLP is twice as wide); default: the variant's (256).", CustomParser = CountOption.OptionalParser("--llm-width", 8) };
        var pictures = new Option<int>("--pictures") { Description = "Scenes the conversations take turns on (0: a fresh scene for each). With a stage that trains neither towers nor mining (finetune-language), their image tokens are computed once and kept.", CustomParser = CountOption.Parser("--pictures", 0), DefaultValueFactory = _ => 0 };
        var cropReadout = new Option<string>("--crop-readout") { Description = "hr-crops: how the head reads a crop's HR map: max (each channel's maximum; learns the digit fastest) or mining (attention over the standardised map pulled onto the digit, as patch info mining reads it).", DefaultValueFactory = _ => "max" };
        cropReadout.AcceptOnlyFromAmong("max", "mining");
        var focusWeight = new Option<double>("--focus-weight") { Description = "Vision stages: weight of the mining focus term (each token's mining attention on its digit); 0 turns it off.", DefaultValueFactory = _ => 1.0 };
        var answerFocus = new Option<double>("--answer-focus-weight") { Description = "Language stages: weight of the answer focus term (one LLM attention head pulled onto the image token of the object a question is about); 0 (the default) is MGM's loss alone.", DefaultValueFactory = _ => 0.0 };
        var answerFocusLayer = new Option<int?>("--answer-focus-layer") { Description = "The LLM layer (0-based) whose head 0 the answer focus term pulls; default: the middle layer (layers / 2).", CustomParser = CountOption.OptionalParser("--answer-focus-layer", 0) };
        var whiten = new Option<bool>("--whiten-projector") { Description = "Before the stage starts (not when it resumes): compose the projector's first layer with the centring and whitening of the image tokens of 512 training pictures, so that every attribute the tokens hold reaches the LLM at the same scale." };
        var checkpointEvery = new Option<int>("--checkpoint-every") { Description = "Steps between resumable checkpoints.", CustomParser = CountOption.Parser("--checkpoint-every", 0), DefaultValueFactory = _ => 100 };
        var command = new Command("train", "Train a model from scratch on a synthetic task and save it as an MGM checkpoint (resumes an interrupted run in the same --out).")
        {
            output, task, variant, llmWidth, from, stage, steps, batch, accumulation, learningRate, towerScale, warmup, exchanges, pictures, cropReadout, focusWeight, answerFocus, answerFocusLayer, whiten, checkpointEvery,
        };
        command.SetAction((parse, token) => Task.FromResult(Run(cli.Settings(parse), parse.GetRequiredValue(output), parse.GetRequiredValue(task),
            parse.GetRequiredValue(variant), parse.GetValue(llmWidth), parse.GetValue(from), parse.GetRequiredValue(stage), (int)(parse.GetValue(cli.Seed) ?? 1), parse.GetValue(exchanges), parse.GetValue(pictures),
            parse.GetRequiredValue(cropReadout) == "mining", parse.GetValue(whiten),
            new TrainingOptions
            {
                Steps = parse.GetValue(steps), BatchSize = parse.GetValue(batch), GradientAccumulation = parse.GetValue(accumulation),
                LearningRate = parse.GetValue(learningRate), MinLearningRate = parse.GetValue(learningRate) / 20,
                TowerLearningRateScale = parse.GetValue(towerScale), WarmupSteps = parse.GetValue(warmup), MiningFocusWeight = parse.GetValue(focusWeight),
                AnswerFocusWeight = parse.GetValue(answerFocus), AnswerFocusLayer = parse.GetValue(answerFocusLayer),
                CheckpointEvery = parse.GetValue(checkpointEvery), Seed = parse.GetValue(cli.Seed) ?? 1,
            }, token)));
        return command;
    }

    /// <summary>The Detail Shapes samples an objective learns from.</summary>
    static Func<long, TrainingSample> Stream(DetailShapesTraining data, TrainingObjective objective, bool cropFocus) => objective switch
    {
        TrainingObjective.TokenLabels => data.VisionSample,
        TrainingObjective.HrCropLabels => cropFocus ? data.HrCropSampleWithFocus : data.HrCropSample,
        _ => data.Sample,
    };

    /// <summary>How well the towers now tell each cell's attributes, on scenes of another seed than the training's.</summary>
    static void ReportTokenLabelAccuracy(CommonSettings settings, MiniGeminiTrainer trainer, int seed, bool crops, bool cropFocus)
    {
        var heldOut = new DetailShapesTraining(int.MaxValue - seed);
        var sample = Stream(heldOut, crops ? TrainingObjective.HrCropLabels : TrainingObjective.TokenLabels, cropFocus);
        var accuracy = trainer.TokenLabelAccuracy(Enumerable.Range(0, crops ? 1024 : 256).Select(i => sample(i)).ToList());
        var names = crops ? ["digit"] : DetailShapesTraining.TokenLabelNames;
        var focus = crops ? double.NaN : trainer.MiningFocusShare(Enumerable.Range(0, 256).Select(i => heldOut.VisionSample(i)).ToList());
        settings.Note($"Held-out {(crops ? "crops" : "cells")}: " + string.Join(", ", names.Zip(accuracy, (n, a) => $"{n} {a:P1}")) +
                      (double.IsNaN(focus) ? "" : $"; mining attention on the digit {focus:P1}") + ".");
    }

    static int Run(CommonSettings settings, string output, string task, string variant, int? llmWidth, string? from, string stageName, int seed, int exchanges, int pictures, bool cropFocus, bool whiten, TrainingOptions options, CancellationToken token)
    {
        if (!task.Equals("detail-shapes", StringComparison.OrdinalIgnoreCase)) return ErrorReport.UsageError($"Unknown --task '{task}': the task is detail-shapes.");
        if (!Variants.TryGetValue(variant, out var blueprint)) return ErrorReport.UsageError($"Unknown --variant '{variant}': use {string.Join(", ", Variants.Keys)}.");
        if (llmWidth is { } width)
        {
            if (width % blueprint.Heads != 0) return ErrorReport.UsageError($"--llm-width {width} is not a multiple of the {blueprint.Heads} attention heads.");
            blueprint = blueprint with { Hidden = width, Intermediate = 2 * width };
        }
        TrainingStage stage;
        try { stage = TrainingStage.Get(stageName); }
        catch (ArgumentException e) { return ErrorReport.UsageError(e.Message); }
        bool crops = stage.Objective == TrainingObjective.HrCropLabels;
        options = options with
        {
            Stage = stage, TokenLabelClasses = crops ? DetailShapesTraining.CropLabelClasses : DetailShapesTraining.TokenLabelClasses,
            ImageTokenCacheSize = stage.TrainsVision ? 0 : pictures,
        };

        var checkpoint = Path.Combine(output, "checkpoint");
        string? initial = null;
        string? modelFolder = null;
        if (Directory.Exists(checkpoint))
        {
            modelFolder = checkpoint;
            settings.Note($"Resuming the run in {Path.GetFullPath(output)}.");
        }
        else if (Directory.Exists(output) && Directory.EnumerateFileSystemEntries(output).Any())
            throw new MiniGeminiTrainingException($"The output folder {Path.GetFullPath(output)} already exists and holds no checkpoint of a run to resume; choose a new folder.");
        if (modelFolder is null && from is not null)
        {
            if (!File.Exists(Path.Combine(from, "config.json"))) throw new MiniGeminiTrainingException($"--from {Path.GetFullPath(from)}: no model there (config.json is missing).");
            modelFolder = from;
        }
        if (modelFolder is null)
        {
            initial = Path.Combine(Path.GetTempPath(), $"minigemini-init-{Guid.NewGuid():N}");
            blueprint.Create(initial, DetailShapesTraining.TokenizerCorpus(ConversationTemplate.VicunaV1), seed);
            modelFolder = initial;
        }
        try
        {
            using var model = MiniGeminiBuilder.FromPretrained(modelFolder).WithTemplate("vicuna_v1").OnDevice(settings.Device).Build();
            var data = new DetailShapesTraining(seed, exchanges, pictures: pictures);
            using var trainer = new MiniGeminiTrainer(model, options);
            settings.Note($"Training {from ?? variant} ({stage.Name}, {trainer.TrainableParameters.Count} tensors) for {options.Steps} steps of " +
                          $"{options.BatchSize * options.GradientAccumulation} conversations on {model.Device}.");
            if (whiten && modelFolder != checkpoint)
            {
                const int calibrationPictures = 512;
                trainer.WhitenProjectorInput(Enumerable.Range(0, calibrationPictures * 2).Select(i => data.Sample(i).Image).OfType<ImageInput>().Take(calibrationPictures).ToList());
                settings.Note($"Whitened the projector's input on the image tokens of {calibrationPictures} training pictures.");
            }
            var bar = new TrainingProgressBar(settings.Quiet);
            var losses = trainer.Train(Stream(data, stage.Objective, cropFocus), output, bar, token);
            bar.Done();
            if (stage.Objective != TrainingObjective.Answers) ReportTokenLabelAccuracy(settings, trainer, seed, crops, cropFocus);
            else if (options.AnswerFocusWeight > 0)
            {
                var heldOut = new DetailShapesTraining(int.MaxValue - seed, exchanges);
                settings.Note($"Held-out conversations: answer focus head on the asked-about object's token {trainer.AnswerFocusShare(Enumerable.Range(0, 64).Select(i => heldOut.Sample(i)).ToList()):P1}.");
            }
            LossPlot.Write(Path.Combine(output, "loss.png"), losses, $"{Path.GetFileName(Path.TrimEndingDirectorySeparator(Path.GetFullPath(output)))} ({stage.Name}): training loss");
            if (settings.Json) Console.Out.WriteLine(JsonSerializer.Serialize(new { output = Path.GetFullPath(output), steps = losses.Count, final_loss = losses[^1] }));
            else Console.Out.WriteLine(Path.GetFullPath(output));
            return 0;
        }
        finally
        {
            if (initial is not null && Directory.Exists(initial)) Directory.Delete(initial, recursive: true);
        }
    }
}

/// <summary>One stderr line per step, rewritten in place on a terminal: step, loss, learning rate, samples/s, time left.</summary>
sealed class TrainingProgressBar(bool quiet) : IProgress<TrainingProgress>
{
    double _smoothed = double.NaN;

    public void Report(TrainingProgress p)
    {
        if (quiet) return;
        _smoothed = double.IsNaN(_smoothed) ? p.Loss : 0.95 * _smoothed + 0.05 * p.Loss;
        var left = TimeSpan.FromSeconds(p.Elapsed.TotalSeconds / (p.Step - p.StartStep) * (p.Steps - p.Step));
        int width = 24, filled = (int)((long)width * p.Step / p.Steps);
        var line = $"[{new string('#', filled)}{new string('.', width - filled)}] step {p.Step}/{p.Steps}  loss {p.Loss:0.0000} (avg {_smoothed:0.0000})  " +
                   $"lr {p.LearningRate:0.0e+0}  {p.SamplesPerSecond:0.0} samples/s  {left:hh\\:mm\\:ss} left";
        if (Console.IsErrorRedirected)
        {
            if (p.Step % 10 == 0 || p.Step == p.Steps) Console.Error.WriteLine(line);
        }
        else Console.Error.Write("\r" + line);
    }

    public void Done()
    {
        if (!quiet && !Console.IsErrorRedirected) Console.Error.WriteLine();
    }
}
