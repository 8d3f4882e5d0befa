using Microsoft.Extensions.Logging;
using MiniGemini.Checkpoints;
using MiniGemini.Modeling;
using MiniGemini.Generation;
using MiniGemini.Hosting;
using MiniGemini.Text;
using MiniGemini.Vision;
using TorchSharp;
using static TorchSharp.torch;

namespace MiniGemini;

/// <summary>
/// Builds a <see cref="MiniGeminiModel"/>, from a Mini-Gemini checkpoint folder or composed from parts:
/// <code>
/// using var model = MiniGeminiBuilder.FromPretrained("MGM-7B")
///     .WithTowerSearchRoots("model_zoo/OpenAI")
///     .OnDevice("cuda").WithPrecision(ModelPrecision.BFloat16)
///     .Build();
/// </code>
/// Every setting is checked at <see cref="Build"/>, which fails with one clear message per problem.
/// </summary>
public sealed class MiniGeminiBuilder
{
    readonly MiniGeminiOptions _options;

    MiniGeminiBuilder(MiniGeminiOptions options) => _options = options;

    /// <summary>Starts from a Mini-Gemini checkpoint folder (config.json with <c>mm_*</c> fields, weights, tokenizer).</summary>
    public static MiniGeminiBuilder FromPretrained(string modelPath)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(modelPath);
        return new MiniGeminiBuilder(new MiniGeminiOptions { ModelPath = modelPath });
    }

    /// <summary>
    /// Starts from parts: an LLM folder (config.json, weights, tokenizer), a CLIP tower folder, an open_clip ConvNeXt
    /// folder, and a checkpoint with the mining and projector weights (<c>vlm_uni_*</c>, <c>mm_projector.*</c>).
    /// </summary>
    public static MiniGeminiBuilder FromParts(string languageModelPath, string visionTowerPath, string auxVisionTowerPath, string multimodalWeightsPath)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(languageModelPath);
        ArgumentException.ThrowIfNullOrWhiteSpace(visionTowerPath);
        ArgumentException.ThrowIfNullOrWhiteSpace(auxVisionTowerPath);
        ArgumentException.ThrowIfNullOrWhiteSpace(multimodalWeightsPath);
        return new MiniGeminiBuilder(new MiniGeminiOptions
        {
            LanguageModelPath = languageModelPath, VisionTowerPath = visionTowerPath,
            AuxVisionTowerPath = auxVisionTowerPath, MultimodalWeightsPath = multimodalWeightsPath,
        });
    }

    /// <summary>Starts from options (e.g. bound from configuration); the options object is copied.</summary>
    public static MiniGeminiBuilder FromOptions(MiniGeminiOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        return new MiniGeminiBuilder(options.Copy());
    }

    /// <summary>Uses this CLIP tower folder (its config.json; its weights unless the checkpoint embeds the tower).</summary>
    public MiniGeminiBuilder WithVisionTower(string path) => Set(o => o.VisionTowerPath = path);

    /// <summary>Uses this ConvNeXt tower folder unless the checkpoint embeds the tower.</summary>
    public MiniGeminiBuilder WithAuxVisionTower(string path) => Set(o => o.AuxVisionTowerPath = path);

    /// <summary>Looks for towers named in config.json by their last path segment under these folders.</summary>
    public MiniGeminiBuilder WithTowerSearchRoots(params string[] roots) => Set(o => { foreach (var r in roots) o.TowerSearchRoots.Add(r); });

    /// <summary>Uses another language-model folder than the checkpoint's (composition).</summary>
    public MiniGeminiBuilder WithLanguageModel(string path) => Set(o => o.LanguageModelPath = path);

    /// <summary>Reads the mining and projector weights from this checkpoint (composition).</summary>
    public MiniGeminiBuilder WithMultimodalWeights(string path) => Set(o => o.MultimodalWeightsPath = path);

    /// <summary>Reads the tokenizer from this folder.</summary>
    public MiniGeminiBuilder WithTokenizer(string path) => Set(o => o.TokenizerPath = path);

    /// <summary>Renders prompts with this template (vicuna_v1, gemma, mistral_instruct, chatml_direct, llama_3).</summary>
    public MiniGeminiBuilder WithTemplate(string name) => Set(o => o.Template = name);

    /// <summary>
    /// Runs on <c>cpu</c>, <c>cuda</c>, <c>cuda:N</c>, or <c>auto</c>: the first CUDA device when the application ships a
    /// CUDA backend and a GPU is there, otherwise the CPU.
    /// </summary>
    public MiniGeminiBuilder OnDevice(string device) => Set(o => o.Device = device);

    /// <summary>Sets the weight and activation precision.</summary>
    public MiniGeminiBuilder WithPrecision(ModelPrecision precision) => Set(o => o.Precision = precision);

    /// <summary>Overrides the high-resolution input side (<c>image_size_aux</c>).</summary>
    public MiniGeminiBuilder WithImageSizeAux(int size) => Set(o => o.ImageSizeAux = size);

    /// <summary>Overrides the HD grid (<c>image_grid</c>) and global view (<c>image_global</c>).</summary>
    public MiniGeminiBuilder WithImageGrid(int grid, bool global) => Set(o => { o.ImageGrid = grid; o.ImageGlobal = global; });

    /// <summary>Refuses images with more pixels than this, before decoding them.</summary>
    public MiniGeminiBuilder WithMaxImagePixels(long maxPixels) => Set(o => o.MaxImagePixels = maxPixels);

    /// <summary>Rotates images by their EXIF orientation first (off by default, as in Mini-Gemini).</summary>
    public MiniGeminiBuilder WithExifOrientation(bool apply = true) => Set(o => o.ApplyExifOrientation = apply);

    /// <summary>
    /// Memory kept for follow-up turns (image tokens and key/value caches of recent conversations, see
    /// <see cref="MiniGeminiOptions.ConversationCacheBytes"/>); 0 turns reuse off.
    /// </summary>
    public MiniGeminiBuilder WithConversationCache(long maxBytes) => Set(o => o.ConversationCacheBytes = maxBytes);

    /// <summary>Memory-maps the weights stored in the model's precision (true) or copies them (false); see <see cref="MiniGeminiOptions.MapWeights"/>.</summary>
    public MiniGeminiBuilder WithMappedWeights(bool map = true) => Set(o => o.MapWeights = map);

    /// <summary>Runs decode steps compiled (true) or op by op (false); see <see cref="MiniGeminiOptions.CompileDecodeStep"/>.</summary>
    public MiniGeminiBuilder WithCompiledDecodeStep(bool compile = true) => Set(o => o.CompileDecodeStep = compile);

    /// <summary>Logs loading and generation diagnostics.</summary>
    public MiniGeminiBuilder WithLogger(ILoggerFactory loggerFactory) => Set(o => o.LoggerFactory = loggerFactory);

    /// <summary>Reports loading progress.</summary>
    public MiniGeminiBuilder WithProgress(IProgress<LoadProgress> progress) => Set(o => o.LoadProgress = progress);

    /// <summary>Renders the diffusion prompts of image requests with this bridge.</summary>
    public MiniGeminiBuilder WithImageGenerator(Txt2ImgBridge bridge) => Set(o => o.ImageGenerator = bridge);

    MiniGeminiBuilder Set(Action<MiniGeminiOptions> change)
    {
        change(_options);
        return this;
    }

    /// <summary>Loads everything, checks that the parts fit together, and moves the model to its device and precision.</summary>
    /// <exception cref="ModelLoadException">
    /// Settings or parts that do not fit together, a file that is missing or malformed, a tower that is not found
    /// (<see cref="ModelLoadException.LookedAt"/>), or weights that do not fit (<see cref="ModelLoadException.Report"/>).
    /// </exception>
    public MiniGeminiModel Build() => new Loader(_options, CancellationToken.None).Load();

    /// <summary>
    /// <see cref="Build"/> on the thread pool. Cancellation is checked before each loading stage (a stage that has begun
    /// finishes first); a cancelled build frees everything it had loaded.
    /// </summary>
    /// <inheritdoc cref="Build" path="/exception"/>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was cancelled.</exception>
    public Task<MiniGeminiModel> BuildAsync(CancellationToken cancellationToken = default) =>
        Task.Run(() => new Loader(_options, cancellationToken).Load(), cancellationToken);

    internal static ScalarType ScalarTypeOf(ModelPrecision precision) => precision switch
    {
        ModelPrecision.Float32 => ScalarType.Float32,
        ModelPrecision.BFloat16 => ScalarType.BFloat16,
        ModelPrecision.Float16 => ScalarType.Float16,
        _ => throw new ModelLoadException($"Unknown precision {precision}."),
    };

    internal static Device ParseDevice(string device)
    {
        var text = device.Trim().ToLowerInvariant();
        if (text == "cpu") return CPU;
        if (text == "auto") return TryInitializeDeviceType(DeviceType.CUDA) && cuda.is_available() ? new Device(DeviceType.CUDA, 0) : CPU;
        if (text == "cuda" || text.StartsWith("cuda:", StringComparison.Ordinal))
        {
            int index = 0;
            if (text.Length > 5 && !int.TryParse(text[5..], out index))
                throw new ModelLoadException($"Device '{device}': the CUDA index is not a number.");
            // Loads the CUDA backend if the application ships one (TorchSharp loads the CPU one by default).
            if (!TryInitializeDeviceType(DeviceType.CUDA) || !cuda.is_available())
                throw new ModelLoadException(
                    $"Device '{device}': CUDA is not available. Reference a CUDA build of libtorch (e.g. TorchSharp-cuda-linux) in the application, and check the driver.");
            if (index < 0 || index >= cuda.device_count())
                throw new ModelLoadException($"Device '{device}': there are {cuda.device_count()} CUDA device(s).");
            return new Device(DeviceType.CUDA, index);
        }
        throw new ModelLoadException($"Device '{device}' is not supported: use cpu, cuda, cuda:N or auto.");
    }

    /// <summary>One build: the steps in order, with progress and the cleanup of what was loaded if a later step fails.</summary>
    sealed class Loader(MiniGeminiOptions options, CancellationToken cancellationToken)
    {
        const int Steps = 4;
        readonly List<IDisposable> _loaded = [];
        int _done;
        ILogger? _logger;

        /// <summary>Mapped weights in 4 KiB pages from which a decode is measurably slower, worth a line in the log.</summary>
        const long SmallPagesWorthAHint = 1L << 30;
        readonly System.Diagnostics.Stopwatch _clock = System.Diagnostics.Stopwatch.StartNew();

        void Progress(string stage)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var start = new LoadProgress(stage, _done++, Steps);
            options.LoadProgress?.Report(start);
            if (_logger is not null) Log.LoadingStage(_logger, stage);
            // A stage may load several modules: their bytes add up to the stage's.
            long before = 0, total = 0, current = 0;
            if (options.LoadProgress is { } progress)
                StateDictLoader.Progress.Value = (read, moduleTotal) =>
                {
                    if (read == 0) (before, total, current) = (before + current, total + moduleTotal, 0);
                    current = read;
                    progress.Report(start with { BytesRead = before + read, BytesTotal = total });
                };
        }

        T Keep<T>(T item) where T : IDisposable
        {
            _loaded.Add(item);
            return item;
        }

        public MiniGeminiModel Load()
        {
            _logger = options.LoggerFactory?.CreateLogger<MiniGeminiModel>();
            using var activity = MiniGeminiTelemetry.Source.StartActivity("load");
            activity?.SetTag("minigemini.model", options.ModelPath);
            try
            {
                return LoadParts();
            }
            catch
            {
                for (int i = _loaded.Count - 1; i >= 0; i--) _loaded[i].Dispose();
                throw;
            }
            finally
            {
                StateDictLoader.Progress.Value = null;
            }
        }

        MiniGeminiModel LoadParts()
        {
            var device = ParseDevice(options.Device);
            var dtype = ScalarTypeOf(options.Precision);
            if (options.ModelPath is null && options.LanguageModelPath is null)
                throw new ModelLoadException("No model: set a model folder (FromPretrained) or a language model (FromParts).");
            if (options.ConversationCacheBytes < 0)
                throw new ModelLoadException($"ConversationCacheBytes is {options.ConversationCacheBytes}: it must be ≥ 0 (0 turns reuse off).");

            Progress("configuration");
            var modelFolder = Path.GetFullPath(options.ModelPath ?? options.LanguageModelPath!);
            if (!Directory.Exists(modelFolder)) throw new ModelLoadException($"{modelFolder}: model folder not found.", modelFolder);
            var llmFolder = options.LanguageModelPath is null ? modelFolder : Path.GetFullPath(options.LanguageModelPath);
            var mgmCheckpoint = Keep(Checkpoint.Open(modelFolder));
            var llmCheckpoint = llmFolder == modelFolder ? mgmCheckpoint : Keep(Checkpoint.Open(llmFolder));
            var multimodal = options.MultimodalWeightsPath is null ? mgmCheckpoint : Keep(Checkpoint.Open(options.MultimodalWeightsPath));
            // The model's own config comes first: a missing or malformed one is named as such, not by what it would have set.
            var mgmConfigPath = Path.Combine(modelFolder, "config.json");
            if (options.ModelPath is not null && !File.Exists(mgmConfigPath))
                throw ModelLoadException.Config($"{mgmConfigPath}: file not found; a Mini-Gemini model folder has a config.json with its mm_* settings.", mgmConfigPath);
            var declared = options.ModelPath is null ? null : MgmConfigAt(mgmConfigPath);

            Progress("tokenizer");
            var chosen = options.Template is null ? null : ConversationTemplate.Get(options.Template);
            // Read beside the towers and weights, which it does not need: Gemma's 256 000 pieces take 0.15–0.3 s, a
            // third of a mapped MGM-2B's load. A broken tokenizer still fails the load with its own exception.
            var tokenizerPath = options.TokenizerPath ?? llmFolder;
            var tokenizerLoad = Task.Run(() => MiniGeminiTokenizer.FromFolder(tokenizerPath), cancellationToken);
            MiniGeminiTokenizer Tokenizer() => tokenizerLoad.GetAwaiter().GetResult();

            Progress("vision towers");
            var resolver = new TowerResolver(modelFolder, options.TowerSearchRoots);
            var opened = new List<IDisposable>();
            try
            {
                var clip = resolver.ResolveClip(options.VisionTowerPath, declared?.VisionTower, mgmCheckpoint, opened);
                bool noAuxTower = options.AuxVisionTowerPath is null && string.IsNullOrWhiteSpace(declared?.VisionTowerAux) &&
                                  !TowerResolver.IsConvNeXtEmbedded(mgmCheckpoint);
                // A model without an aux tower, mining and HR size is LR-only (LLaVA's layout): CLIP features go to the projector.
                bool lrOnly = noAuxTower && declared is { MmHiddenSizeAux: null, ImageSizeAux: null, ImageGrid: 1 };
                if (noAuxTower && !lrOnly)
                    throw new ModelLoadException(
                        $"No ConvNeXt (aux) tower: patch info mining{(declared?.ImageGrid > 1 ? $" and the image grid {declared.ImageGrid}" : "")} need one, but " +
                        "mm_vision_tower_aux is not set, the checkpoint embeds none, and no path was given (WithAuxVisionTower).");
                var convNeXt = lrOnly ? null : resolver.ResolveConvNeXt(options.AuxVisionTowerPath, declared?.VisionTowerAux, mgmCheckpoint, opened);

                var multimodalPrefix = MultimodalPrefix(multimodal);
                var config = Configure(declared, llmFolder, clip.Config, convNeXt?.Config, multimodal, multimodalPrefix);
                if (lrOnly) config = config with { ImageSizeAux = options.ImageSizeAux ?? clip.Config.ImageSize };
                CheckFit(config, clip.Config, convNeXt?.Config);
                var views = ImagePreprocessOptions.ForModel(config, clip.Config, PreprocessorOf(clip.Folder)) with
                {
                    MaxImagePixels = options.MaxImagePixels, ApplyExifOrientation = options.ApplyExifOrientation,
                };

                // One state-dict load through one key-rename table: the LLM from its folder, each other part from its file.
                var table = new List<KeyRename>(clip.Rows);
                if (convNeXt is not null) table.AddRange(convNeXt.Rows);
                table.Add(new KeyRename(MgmCheckpointKeys.Mining, multimodal, multimodalPrefix + "vlm_uni_"));
                table.Add(new KeyRename(MgmCheckpointKeys.Projector, multimodal, multimodalPrefix + "mm_projector."));
                table.Add(new KeyRename("", llmCheckpoint, ""));
                using var source = new RenamedSource(table);
                CausalLanguageModel.RequireSizesOfTheWeights(source, config.Llm, "");

                if (tokenizerLoad.IsFaulted) Tokenizer(); // its error before the weights are read, when already known
                Progress("weights");
                var generationPath = Path.Combine(llmFolder, "generation_config.json");
                var generation = File.Exists(generationPath) ? GenerationConfig.Load(generationPath) : null;
                MiniGeminiForCausalLM model;
                // The towers' large layers are made in the model's precision (see LoadingLayers); the LLM is made on its device.
                using (LoadingLayers.ForLoading(dtype))
                    model = Keep(new MiniGeminiForCausalLM(config, clip.Config, convNeXt?.Config, views, new LlmOptions { CompileDecodeStep = options.CompileDecodeStep }, device, dtype));
                model.To(device, dtype);
                model.Load(source, options.MapWeights);

                var tokenizer = Tokenizer();
                var template = chosen ?? ConversationTemplate.Select(tokenizer, config.Llm.ModelType, config.Llm.Architectures);
                foreach (var file in _loaded.OfType<ITensorSource>().ToList())
                {
                    file.Dispose();
                    _loaded.Remove(file);
                }
                if (_logger is not null && device.type == DeviceType.CPU && MappedPages.Of(llmFolder) is { InSmallPages: >= SmallPagesWorthAHint } pages)
                    Log.MappedInSmallPages(_logger, Path.GetFileName(modelFolder), pages.InSmallPages / 1e9, pages.Resident / 1e9);
                options.LoadProgress?.Report(new LoadProgress("ready", Steps, Steps));
                double seconds = _clock.Elapsed.TotalSeconds;
                MiniGeminiTelemetry.LoadSeconds.Record(seconds);
                if (_logger is not null)
                    Log.Loaded(_logger, Path.GetFileName(modelFolder), config.Llm.Family.ToString(), template.Name, model.TokensPerImage, device.ToString(), options.Precision.ToString(), seconds);
                var defaults = GenerationDefaults.Create(config.Llm, generation, tokenizer, template);
                return new MiniGeminiModel(Path.GetFileName(modelFolder.TrimEnd('/', '\\')), model, tokenizer, template, defaults,
                    options.Precision, options.ImageGenerator, _logger, options.ConversationCacheBytes) { Source = (modelFolder, clip.Folder) };
            }
            finally
            {
                foreach (var file in opened) file.Dispose();
                // A load that failed elsewhere leaves the tokenizer's own error, if any, observed rather than to the finalizer.
                _ = tokenizerLoad.ContinueWith(static t => t.Exception, TaskContinuationOptions.OnlyOnFaulted);
            }
        }

        /// <summary>The MGM config at <paramref name="path"/>, or null when there is none or it is a plain LLM config.</summary>
        static MgmConfig? MgmConfigAt(string path)
        {
            if (!File.Exists(path)) return null;
            var json = ConfigJson.Load(path);
            return json.Has("mm_hidden_size") ? MgmConfig.From(json) : null;
        }

        static PreprocessorConfig? PreprocessorOf(string? clipFolder)
        {
            var path = clipFolder is null ? null : Path.Combine(clipFolder, "preprocessor_config.json");
            return path is not null && File.Exists(path) ? PreprocessorConfig.Load(path) : null;
        }

        /// <summary>The MGM config with builder overrides; for compositions, derived from the parts.</summary>
        MgmConfig Configure(MgmConfig? declared, string llmFolder, ClipVisionConfig clip, ConvNeXtConfig? convNeXt, ITensorSource multimodal,
            string multimodalPrefix)
        {
            var config = declared ?? new MgmConfig
            {
                Llm = LlmConfig.Load(Path.Combine(llmFolder, "config.json")),
                MmHiddenSize = clip.HiddenSize,
                MmHiddenSizeAux = convNeXt?.FusedChannels,
                ProjectorType = ProjectorTypeOf(multimodal, multimodalPrefix),
                ImageSizeAux = 768,
            };
            if (options.LanguageModelPath is not null && declared is not null)
                config = config with { Llm = LlmConfig.Load(Path.Combine(llmFolder, "config.json")) };
            int grid = options.ImageGrid ?? config.ImageGrid;
            return config with
            {
                ImageSizeAux = options.ImageSizeAux ?? config.ImageSizeAux ?? 768,
                ImageGrid = grid,
                ImageGlobal = options.ImageGlobal ?? (declared is null ? grid > 1 : config.ImageGlobal),
            };
        }

        /// <summary>Multimodal weights sit under <c>model.</c> (an MGM checkpoint) or at the root of a file of their own.</summary>
        static string MultimodalPrefix(ITensorSource source) =>
            source.Keys.Any(k => k.StartsWith(MgmCheckpointKeys.Mining, StringComparison.Ordinal) || k.StartsWith(MgmCheckpointKeys.Projector, StringComparison.Ordinal))
                ? "model." : "";

        static string ProjectorTypeOf(ITensorSource source, string prefix)
        {
            var projector = prefix + "mm_projector.";
            if (source.TryGetInfo(projector + "0.weight", out _))
                return $"mlp{source.Keys.Count(k => k.StartsWith(projector, StringComparison.Ordinal) && k.EndsWith(".weight", StringComparison.Ordinal))}x_gelu";
            if (source.TryGetInfo(projector + "weight", out _)) return "linear";
            throw new ModelLoadException($"{source.Location}: no projector weights (mm_projector.*).", source.Location, projector + "0.weight");
        }

        static void CheckFit(MgmConfig config, ClipVisionConfig clip, ConvNeXtConfig? convNeXt)
        {
            if (clip.HiddenSize != config.MmHiddenSize)
                throw new ModelLoadException(
                    $"The CLIP tower is {clip.HiddenSize} wide but mm_hidden_size is {config.MmHiddenSize}: the tower does not belong to this model.");
            if (convNeXt is not null && config.MmHiddenSizeAux is { } aux && aux != convNeXt.FusedChannels)
                throw new ModelLoadException(
                    $"The ConvNeXt tower fuses {convNeXt.FusedChannels} channels but mm_hidden_size_aux is {aux}: the tower does not belong to this model.");
            if (config.VisionSelectFeature != "patch")
                throw new ModelLoadException(
                    $"mm_vision_select_feature '{config.VisionSelectFeature}' keeps the CLS token, which patch info mining cannot place on the patch grid; use 'patch'.");
            if (config.ImageGrid is < 1 or > MgmConfig.MaxImageGrid)
                throw new ModelLoadException($"The image grid must be from 1 to {MgmConfig.MaxImageGrid} (got {config.ImageGrid}).");
            int size = config.ImageSizeAux ?? 0, patches = clip.PatchesPerSide * config.ImageGrid;
            if (size > MgmConfig.MaxImageSide)
                throw new ModelLoadException($"High-resolution size {size} is larger than {MgmConfig.MaxImageSide}.");
            if (convNeXt is null) return;
            if (size <= 0 || size % 4 != 0 || size / 4 % patches != 0)
                throw new ModelLoadException(
                    $"High-resolution size {size} does not fit: the ConvNeXt map (size / 4 = {size / 4.0}) must split into {patches}×{patches} equal regions " +
                    $"({clip.PatchesPerSide} CLIP patches per side × grid {config.ImageGrid}); e.g. {patches * 4 * Math.Max(1, 768 / (patches * 4))}.");
        }
    }
}
