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
if (args.Length > 0 && args[0] == "llm-decode") return MiniGemini.Benchmarks.LlmDecodeConsole.Run(args[1..]);
if (args.Length > 0 && args[0] == "llm-parity") return MiniGemini.Benchmarks.LlmDecodeConsole.RunParity(args[1..]);
if (args.Length > 0 && args[0] == "mining") return MiningTiming.Run(args[1..]);
if (args.Length > 0 && args[0] == "row-linear") return MiniGemini.Benchmarks.RowLinearConsole.Run(args[1..]);
if (args.Length > 0 && args[0] == "at-size") return MiniGemini.Benchmarks.AtSizeConsole.Run(args[1..]);
if (args.Length > 0 && args[0] == "soak") return MiniGemini.Benchmarks.SoakConsole.Run(args[1..]);
if (args.Length > 0 && args[0] == "shaped-checkpoint") return MiniGemini.Benchmarks.ShapedCheckpoints.ShapedCheckpointConsole.Run(args[1..]);
NativeMemory.Clear();
BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args);
return 0;
