using BenchmarkDotNet.Running;
using MiniGemini.Benchmarks.Mining;

// Console modes for any device (BenchmarkDotNet is awkward on a GPU machine without .NET):
//   llm-decode / llm-parity …                     LLM decoding speed and fixture parity
//   mining --device cpu|cuda --dtype fp32|bf16 …   patch info mining timing loop
//   soak MODEL_FOLDER [--requests N] …             many mixed, partly cancelled requests: latency and memory
//   shaped-checkpoint --model mgm-2b|mgm-7b|mgm-7b-hd --out DIR [--towers beside|embedded]  random weights in the released files' layout
//   row-linear                                     one bfloat16 row times real-size weights: libtorch against RowLinear
//   at-size MODEL_FOLDER [--towers ROOT] [--dtype bf16|fp32] …  load, memory, encode, prefill and decode at real size
// anything else goes to BenchmarkDotNet.
var consoles = new Dictionary<string, Func<string[], int>>
{
    ["llm-decode"] = MiniGemini.Benchmarks.LlmDecodeConsole.Run,
    ["llm-parity"] = MiniGemini.Benchmarks.LlmDecodeConsole.RunParity,
    ["mining"] = MiningTiming.Run,
    ["row-linear"] = MiniGemini.Benchmarks.RowLinearConsole.Run,
    ["at-size"] = MiniGemini.Benchmarks.AtSizeConsole.Run,
    ["soak"] = MiniGemini.Benchmarks.SoakConsole.Run,
    ["shaped-checkpoint"] = MiniGemini.Benchmarks.ShapedCheckpoints.ShapedCheckpointConsole.Run,
};
if (args.Length > 0 && consoles.TryGetValue(args[0], out var console))
{
    try
    {
        return console(args[1..]);
    }
    catch (Exception e) when (e is ArgumentException or IOException or MiniGemini.MiniGeminiException)
    {
        // A wrong argument, a missing file or a checkpoint the library refuses: its message says which, no stack trace.
        Console.Error.WriteLine($"{args[0]}: {e.Message}");
        return 2;
    }
}
NativeMemory.Clear();
BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args);
return 0;
