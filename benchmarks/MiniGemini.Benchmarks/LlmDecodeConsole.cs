using System.Diagnostics;
using MiniGemini.Checkpoints;
using MiniGemini.Modeling;
using MiniGemini.Generation;
using TorchSharp;
using static TorchSharp.torch;

namespace MiniGemini.Benchmarks;

/// <summary>
/// Decoding speed outside BenchmarkDotNet, for GPUs and large shapes:
/// <c>llm-decode [--device cpu|cuda] [--dtype fp32|bf16|fp16] [--shape 7b|mid|tiny|deep-narrow] [--prompt 600] [--new 128] [--batch 1] [--runs 3] [--threads n] [--step compiled|eager|both]</c>.
/// Builds a random-weight Llama of the shape directly on the device in the dtype, prefills a random prompt and
/// decodes greedily with the token generator, printing prefill time and decode tokens/s: with the compiled decode step,
/// op by op (eager), or both alternating run by run on the same weights (the default), so their ratio is of one run.
/// </summary>
public static class LlmDecodeConsole
{
    /// <summary>Runs the measurement; returns the process exit code.</summary>
    public static int Run(string[] args)
    {
        var arguments = new ConsoleArgs(args);
        var dtype = arguments.DType();
        var config = arguments.Get("shape", "7b") switch
        {
            "7b" => LlmShapes.Llama7B,
            "mid" => LlmShapes.Mid,
            "tiny" => LlmShapes.Tiny,
            // 7B's depth at toy width: the time per token is almost all per-op overhead, not arithmetic.
            "deep-narrow" => LlmShapes.Llama(64, 32, 4, 128, 400),
            var other => throw new ArgumentException($"--shape {other}: use 7b, mid, tiny or deep-narrow."),
        };
        int promptLength = arguments.Int("prompt", 600);
        int newTokens = arguments.Int("new", 128);
        int batch = arguments.Int("batch", 1);
        int runs = arguments.Int("runs", 3);
        if (arguments.Int("threads", 0) is > 0 and var threads) set_num_threads(threads);

        var device = arguments.Device();
        Console.WriteLine($"device {device} ({(device.type == DeviceType.CUDA ? "CUDA" : $"{get_num_threads()} of {Environment.ProcessorCount} CPU threads")}), dtype {dtype}, " +
                          $"hidden {config.HiddenSize}, layers {config.NumHiddenLayers}, heads {config.NumAttentionHeads}, ffn {config.IntermediateSize}, vocab {config.VocabSize}");

        var steps = arguments.Get("step", "both") switch
        {
            "both" => new[] { true, false },
            "compiled" => [true],
            "eager" => [false],
            var other => throw new ArgumentException($"--step {other}: use compiled, eager or both."),
        };

        var clock = Stopwatch.StartNew();
        // One model per step kind, with the same random weights (same seed).
        var models = steps.Select(compiled => CausalLanguageModel.CreateRandom(config, seed: 1, device, dtype,
            options: new LlmOptions { CompileDecodeStep = compiled })).ToArray();
        long parameters = ((nn.Module)models[0]).parameters().Sum(p => p.numel());
        Synchronize(device);
        Console.WriteLine($"built {parameters / 1e9:F2}B parameters in {clock.Elapsed.TotalSeconds:F1} s");

        using var generator = new Generator(2); // TorchSharp makes CPU generators only: draw on the CPU, then move
        using var ids = randint(0, config.VocabSize, [batch, promptLength], generator: generator).to(device);
        using var prompt = models[0].Embed(ids, validate: false);
        var options = new GenerationOptions { MaxNewTokens = newTokens, EosTokenIds = [] };

        for (int m = 0; m < models.Length; m++)
        {
            var (warmPrefill, warmDecode) = Measure(models[m], prompt, options with { MaxNewTokens = Math.Min(8, newTokens) }, device); // warm-up: kernels, allocator, script
            Console.WriteLine($"first use, {Step(steps[m])} step: prefill + first token {warmPrefill.TotalMilliseconds:F1} ms, " +
                              $"{Math.Min(8, newTokens) - 1} more tokens in {warmDecode.TotalMilliseconds:F1} ms{(steps[m] ? " (the script's compile and first runs included)" : "")}");
        }
        var decodeRates = models.Select(_ => new List<double>()).ToArray();
        for (int run = 0; run < runs; run++)
            for (int m = 0; m < models.Length; m++)
            {
                var (prefill, decode) = Measure(models[m], prompt, options, device);
                double rate = (newTokens - 1) * batch / decode.TotalSeconds;
                decodeRates[m].Add(rate);
                Console.WriteLine($"run {run + 1} {Step(steps[m])}: prompt {promptLength} × {batch}: prefill + first token {prefill.TotalMilliseconds:F1} ms; " +
                                  $"{newTokens - 1} more tokens in {decode.TotalMilliseconds:F0} ms = {rate:F1} tok/s " +
                                  $"({decode.TotalMilliseconds / (newTokens - 1):F2} ms/token)");
            }
        for (int m = 0; m < models.Length; m++)
        {
            decodeRates[m].Sort();
            Console.WriteLine($"{Step(steps[m])} step: decode tokens/s best of {runs} {decodeRates[m][^1]:F1}, median {decodeRates[m][runs / 2]:F1}; " +
                              $"tensor handles created per decoded token: {HandlesPerToken(models[m], prompt, options):F0}");
        }
        if (models[0].CompiledStepFailure is { } failure) Console.WriteLine($"the compiled step failed and was replaced by the eager one: {failure.Message}");
        if (models.Length == 2)
        {
            Console.WriteLine($"compiled / eager, median decode tokens/s: {decodeRates[0][runs / 2] / decodeRates[1][runs / 2]:F2}");
            Console.WriteLine($"compiled vs eager logits over 16 steps fed the same tokens: max |Δ| / max |logits| = {StepAgreement(models[0], models[1], prompt, 16):E2}");
        }
        foreach (var llm in models) llm.Dispose();
        return 0;
    }

    /// <summary>
    /// Prefills both models (same weights) with <paramref name="prompt"/>, then runs <paramref name="steps"/> decode
    /// steps on each, both fed the eager model's greedy token: the largest logit difference relative to the logits' scale.
    /// </summary>
    static double StepAgreement(CausalLanguageModel compiled, CausalLanguageModel eager, Tensor prompt, int steps)
    {
        using var _ = inference_mode();
        using var scope = NewDisposeScope();
        long batch = prompt.shape[0], length = prompt.shape[1];
        using var compiledCache = compiled.CreateCache((int)batch, (int)length + steps);
        using var eagerCache = eager.CreateCache((int)batch, (int)length + steps);
        var positions = arange(length, device: prompt.device).expand(batch, length);
        compiled.Forward(prompt, positions, cache: compiledCache);
        var next = eager.Forward(prompt, positions, cache: eagerCache).argmax(-1).view(batch, 1);
        double worst = 0;
        for (int i = 0; i < steps; i++)
        {
            var position = full(batch, 1, length + i, device: prompt.device);
            var a = compiled.DecodeStep(next, position, null, compiledCache);
            var b = eager.DecodeStep(next, position, null, eagerCache);
            worst = Math.Max(worst, (a - b).abs().max().item<float>() / b.abs().max().item<float>());
            next = b.argmax(-1).view(batch, 1);
        }
        return worst;
    }

    static string Step(bool compiled) => compiled ? "compiled" : "eager";

    /// <summary>
    /// <c>llm-parity [--device cuda] [--dtype fp32|bf16|fp16] folder…</c>: loads each LLM fixture folder on the device and prints
    /// the max abs error of the logits (no mask and right-padded mask) and whether the greedy tokens are identical,
    /// so parity can be checked where the test project cannot run. Returns 1 when a check fails.
    /// </summary>
    public static int RunParity(string[] args)
    {
        var arguments = new ConsoleArgs(args);
        var dtype = arguments.DType();
        var device = arguments.Device();
        bool ok = true;
        foreach (var folder in arguments.Words)
        {
            using var llm = CausalLanguageModel.FromPretrained(folder, device, dtype);
            using var io = SafetensorsFile.Open(Path.Combine(folder, "io.safetensors"));
            using var scope = NewDisposeScope();
            var ids = io.Load("input_ids").to(device);
            var positions = arange(ids.shape[1], device: device).expand(ids.shape[0], ids.shape[1]);
            var logits = llm.Forward(llm.Embed(ids), positions, allLogits: true).cpu();
            var masked = llm.Forward(llm.Embed(ids), positions, io.Load("attention_mask").to(device), allLogits: true).cpu();
            double Error(Tensor reference, Tensor ours) => (ours - reference).abs().max().item<float>() / Math.Max(1.0, reference.abs().max().item<float>());
            double e1 = Error(io.Load("logits"), logits), e2 = Error(io.Load("logits_masked"), masked);
            var expected = io.Load("greedy_tokens");
            var steps = TokenGenerator.Generate(llm, llm.Embed(ids), null, new GenerationOptions { MaxNewTokens = (int)expected.shape[1], EosTokenIds = [] }).ToList();
            var tokens = tensor(Enumerable.Range(0, (int)ids.shape[0]).SelectMany(b => steps.Select(s => (long)s.TokenIds[b])).ToArray(), expected.shape);
            bool same = tokens.Equals(expected);
            bool pass = e1 <= 1e-4 && e2 <= 1e-4 && same;
            ok &= pass || dtype != ScalarType.Float32;
            string step = llm.CompiledStepFailure is { } failure ? $"eager after the compiled step failed: {failure.Message}"
                : llm.CompiledStep() is null ? "eager" : "compiled";
            Console.WriteLine($"{Path.GetFileName(folder)} on {device} {dtype}: logits max |Δ|/max(1,|ref|) {e1:E2}, masked {e2:E2}, greedy tokens {(same ? "identical" : "DIFFERENT")} ({step} decode step)");
        }
        return ok ? 0 : 1;
    }

    /// <summary>
    /// Generates from <paramref name="prompt"/>: the time to the first token (prefill) and the time of the rest;
    /// <paramref name="decodeStarts"/> runs once the first token is there.
    /// </summary>
    internal static (TimeSpan Prefill, TimeSpan Decode) Measure(CausalLanguageModel llm, Tensor prompt, GenerationOptions options,
        Device device, Action? decodeStarts = null)
    {
        Synchronize(device);
        var clock = Stopwatch.StartNew();
        TimeSpan prefill = default, decodeFrom = default;
        foreach (var step in TokenGenerator.Generate(llm, prompt, null, options))
        {
            if (step.Step != 0) continue;
            prefill = clock.Elapsed; // the step's host read has already waited for the device
            decodeStarts?.Invoke();
            decodeFrom = clock.Elapsed;
        }
        return (prefill, clock.Elapsed - decodeFrom);
    }

    static double HandlesPerToken(CausalLanguageModel llm, Tensor prompt, GenerationOptions options)
    {
        var stats = DisposeScopeManager.Statistics;
        long atSecond = 0, atLast = 0;
        int steps = 0;
        foreach (var step in TokenGenerator.Generate(llm, prompt, null, options with { MaxNewTokens = 17 }))
        {
            long created = stats.CreatedInScopeCount + stats.CreatedOutsideScopeCount;
            if (step.Step == 1) atSecond = created;
            atLast = created;
            steps = step.Step;
        }
        return (atLast - atSecond) / (double)(steps - 1);
    }

    static void Synchronize(Device device)
    {
        if (device.type == DeviceType.CUDA) cuda.synchronize(device);
    }
}
