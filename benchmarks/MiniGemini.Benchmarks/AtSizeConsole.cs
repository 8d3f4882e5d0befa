using System.Diagnostics;
using MiniGemini.Checkpoints;
using MiniGemini.Generation;
using TorchSharp;
using static TorchSharp.torch;

namespace MiniGemini.Benchmarks;

/// <summary>
/// A real-size model on this machine, measured end to end:
/// <c>at-size MODEL_FOLDER [--towers MODEL_ZOO_OPENAI] [--dtype bf16|fp32] [--map true|false] [--step compiled|eager] [--image PICTURE] [--new 16] [--threads n]</c>
/// (<c>--new 0</c> stops after the encode).
/// Prints: the time <c>cat</c> takes to read the checkpoint files from the page cache, the load time and the peak
/// resident memory during the load against the bytes of the weights that end up resident, the machine's memory read
/// bandwidth (before and after the decode; the floor takes the better), the time to encode one image (towers + mining +
/// projector), the prefill of a real prompt (template, question and image tokens), decode tokens/s with the physical
/// floor (bytes read per token / bandwidth), and the peak resident memory of the whole run.
/// </summary>
public static class AtSizeConsole
{
    /// <summary>Runs the measurement; returns the process exit code.</summary>
    public static int Run(string[] args)
    {
        var arguments = new ConsoleArgs(args);
        var folder = Path.GetFullPath(arguments.Words.FirstOrDefault() ?? throw new ArgumentException("at-size MODEL_FOLDER [--towers ROOT] [--dtype bf16|fp32] …"));
        var towers = arguments.Get("towers", "");
        var precision = arguments.DType() switch
        {
            ScalarType.BFloat16 => ModelPrecision.BFloat16,
            ScalarType.Float16 => ModelPrecision.Float16,
            _ => ModelPrecision.Float32,
        };
        int newTokens = arguments.Int("new", 16);
        if (arguments.Int("threads", 0) is > 0 and var threads) set_num_threads(threads);
        Console.WriteLine($"{Path.GetFileName(folder)} in {precision} on {get_num_threads()} of {Environment.ProcessorCount} CPU threads");

        var files = CheckpointFiles(folder).Concat(towers.Length > 0 ? CheckpointFiles(towers) : []).ToList();
        long fileBytes = files.Sum(f => new FileInfo(f).Length);
        Cat(files); // into the page cache
        double catSeconds = Cat(files);
        Console.WriteLine($"files: {files.Count}, {fileBytes / 1e9:F2} GB; cat > /dev/null from the page cache: {catSeconds:F2} s ({fileBytes / 1e9 / catSeconds:F2} GB/s)");

        ResetPeakRss();
        long rssBefore = Rss("VmRSS");
        var clock = Stopwatch.StartNew();
        var stages = new List<(string Stage, double Seconds)>();
        var builder = MiniGeminiBuilder.FromPretrained(folder).WithPrecision(precision)
            .WithProgress(new StageClock(stage => stages.Add((stage, clock.Elapsed.TotalSeconds))));
        if (towers.Length > 0) builder = builder.WithTowerSearchRoots(towers);
        if (arguments.Get("map", "") is "true" or "false") builder = builder.WithMappedWeights(arguments.Get("map", "") == "true");
        if (arguments.Get("step", "") is "compiled" or "eager") builder = builder.WithCompiledDecodeStep(arguments.Get("step", "") == "compiled");
        using var model = builder.Build();
        double loadSeconds = clock.Elapsed.TotalSeconds;
        long peakLoad = Rss("VmHWM") - rssBefore;
        long weightBytes = model.Module.parameters().Sum(p => p.numel() * p.ElementSize);
        Console.WriteLine($"load: {loadSeconds:F2} s ({loadSeconds / catSeconds:F2}x cat); weights resident {weightBytes / 1e9:F2} GB; " +
                          $"peak RSS during the load {peakLoad / 1e9:F2} GB above the {rssBefore / 1e9:F2} GB before ({(double)peakLoad / weightBytes:F3}x the weights)");

        Console.WriteLine("  " + string.Join(", ", stages.Zip(stages.Skip(1).Append((Stage: "", Seconds: loadSeconds)), (a, b) => $"{a.Stage} {b.Seconds - a.Seconds:F2} s")));

        double bandwidthBefore = ReadBandwidth();
        Console.WriteLine($"memory read bandwidth: {bandwidthBefore / 1e9:F1} GB/s (best of 5 sums over a 1 GiB float32 tensor)");

        using var mode = inference_mode();
        var image = arguments.Get("image", "");
        var input = image.Length > 0 ? ImageInput.FromFile(image) : ImageInput.FromBytes(Picture(), "gradient");
        Tensor imageTokens = null!;
        for (int run = 0; run < 2; run++)
        {
            imageTokens?.Dispose();
            clock.Restart();
            using var pixels = model.Processor.PreprocessImages([input]);
            using var features = model.Module.Encode(pixels);
            imageTokens = features.Tokens.clone(); // [1, N, H]
            Console.WriteLine($"encode one image ({(run == 0 ? "first" : "again")}): {clock.Elapsed.TotalMilliseconds:F0} ms, {features.Tokens.shape[1]} image tokens");
        }

        if (newTokens == 0)
        {
            imageTokens.Dispose();
            return 0;
        }

        var prompt = MiniGeminiPrompt.Ask("Describe this image in detail.", input);
        var ids = model.Processor.Tokenize(prompt);
        using var embeddings = model.Module.Splice(ids, imageTokens).unsqueeze(0); // [1, L, H]
        var options = new GenerationOptions { MaxNewTokens = newTokens, EosTokenIds = [] };
        LlmDecodeConsole.Measure(model.Module, embeddings, options with { MaxNewTokens = 2 }, CPU); // warm-up
        long faultsBefore = MajorFaults();
        // benchmarks/gomp-trace prints libtorch's OpenMP parallel regions while this file exists: the decode's, if any.
        var traceMarker = Environment.GetEnvironmentVariable("GOMP_TRACE_WHILE");
        Action? decodeStarts = string.IsNullOrEmpty(traceMarker) ? null : () => File.WriteAllText(traceMarker, "");
        var (prefill, decode) = LlmDecodeConsole.Measure(model.Module, embeddings, options, CPU, decodeStarts);
        if (decodeStarts is not null) File.Delete(traceMarker!);
        long faults = MajorFaults() - faultsBefore, peakRun = Rss("VmHWM"); // before the bandwidth's 1 GiB below
        double rate = (newTokens - 1) / decode.TotalSeconds;
        // This machine's bandwidth moves by tens of percent within minutes: measured again after the decode, the floor
        // takes the better of the two, so a slow moment at the start does not make the decode look close to it.
        double bandwidthAfter = ReadBandwidth(), bandwidth = Math.Max(bandwidthBefore, bandwidthAfter);
        long perToken = DecodeBytesPerToken(model);
        double floor = bandwidth / perToken;
        Console.WriteLine($"prefill of {embeddings.shape[1]} positions + first token: {prefill.TotalSeconds:F2} s");
        Console.WriteLine($"memory read bandwidth after the decode: {bandwidthAfter / 1e9:F1} GB/s; the floor takes {bandwidth / 1e9:F1} GB/s");
        Console.WriteLine($"decode ({(model.Module.CompiledStep() is null ? "eager" : "compiled")} step): {newTokens - 1} tokens in {decode.TotalSeconds:F2} s = {rate:F2} tok/s; floor {perToken / 1e9:F2} GB per token / " +
                          $"{bandwidth / 1e9:F1} GB/s = {floor:F2} tok/s; {floor / rate:F2}x the floor's time per token; " +
                          $"{faults} pages read from disk meanwhile (major faults)");
        Console.WriteLine($"peak RSS of the run: {peakRun / 1e9:F2} GB");
        if (MappedPages.Of(folder) is { Resident: > 0 } mapped)
            Console.WriteLine($"mapped weights of the model folder: {mapped.Resident / 1e9:F2} GB resident, {mapped.InHugePages / 1e9:F2} GB of it in 2 MiB pages");
        imageTokens.Dispose();
        return 0;
    }

    static IEnumerable<string> CheckpointFiles(string folder) =>
        Directory.EnumerateFiles(folder, "*", SearchOption.AllDirectories)
            .Where(f => f.EndsWith(".safetensors", StringComparison.Ordinal) || f.EndsWith(".bin", StringComparison.Ordinal))
            .Order(StringComparer.Ordinal);

    /// <summary>Seconds <c>cat FILES &gt; /dev/null</c> takes.</summary>
    static double Cat(IReadOnlyList<string> files)
    {
        var start = new ProcessStartInfo("sh", ["-c", "cat \"$@\" > /dev/null", "cat", .. files]);
        var clock = Stopwatch.StartNew();
        using var process = Process.Start(start)!;
        process.WaitForExit();
        if (process.ExitCode != 0) throw new IOException($"cat exited with {process.ExitCode}.");
        return clock.Elapsed.TotalSeconds;
    }

    /// <summary>Resets VmHWM to the current RSS (Linux ≥ 4.0: writing 5 to clear_refs).</summary>
    static void ResetPeakRss() => File.WriteAllText("/proc/self/clear_refs", "5");

    /// <summary>A field of /proc/self/status in bytes (VmRSS, VmHWM).</summary>
    static long Rss(string field)
    {
        var line = File.ReadLines("/proc/self/status").First(l => l.StartsWith(field + ":", StringComparison.Ordinal));
        return long.Parse(line[(field.Length + 1)..].Trim().Split(' ')[0]) * 1024;
    }

    /// <summary>Page faults of this process that read from disk (field 12 of /proc/self/stat).</summary>
    static long MajorFaults() => long.Parse(File.ReadAllText("/proc/self/stat").Split(')')[1].Split(' ', StringSplitOptions.RemoveEmptyEntries)[9]);

    /// <summary>Bytes per second a reduction reads from memory: the best of 5 sums over 1 GiB of float32.</summary>
    static double ReadBandwidth()
    {
        using var x = ones(1L << 28);
        double best = 0;
        for (int i = 0; i < 5; i++)
        {
            var clock = Stopwatch.StartNew();
            using var s = x.sum();
            _ = s.item<float>();
            best = Math.Max(best, x.numel() * 4 / clock.Elapsed.TotalSeconds);
        }
        return best;
    }

    /// <summary>
    /// Bytes of weights one decoded token reads: every decoder weight and the head, but one row of the embedding table
    /// (a tied head reads all of it once, as the head), and nothing of the vision side.
    /// </summary>
    static long DecodeBytesPerToken(MiniGeminiModel model)
    {
        var named = model.Module.named_parameters().ToList();
        bool tied = !named.Any(p => p.name == "lm_head.weight");
        return named.Where(p => p.name.StartsWith("model.layers.", StringComparison.Ordinal) || p.name.StartsWith("model.norm.", StringComparison.Ordinal) ||
                                p.name == "lm_head.weight" || (tied && p.name == "model.embed_tokens.weight"))
                    .Sum(p => p.parameter.numel() * p.parameter.ElementSize);
    }

    /// <summary>Notes when each load stage starts (the builder reports synchronously, on the loading thread).</summary>
    sealed class StageClock(Action<string> started) : IProgress<LoadProgress>
    {
        string? _last;

        public void Report(LoadProgress value)
        {
            if (value.Stage == _last) return;
            _last = value.Stage;
            started(value.Stage);
        }
    }

    /// <summary>A 640×480 PNG gradient, so the benchmark needs no picture of its own.</summary>
    static byte[] Picture()
    {
        using var picture = new SixLabors.ImageSharp.Image<SixLabors.ImageSharp.PixelFormats.Rgb24>(640, 480);
        for (int y = 0; y < 480; y++)
            for (int x = 0; x < 640; x++)
                picture[x, y] = new SixLabors.ImageSharp.PixelFormats.Rgb24((byte)(x * 255 / 639), (byte)(y * 255 / 479), 128);
        using var stream = new MemoryStream();
        SixLabors.ImageSharp.ImageExtensions.SaveAsPng(picture, stream);
        return stream.ToArray();
    }
}
