using BenchmarkDotNet.Running;
using MiniGemini.Benchmarks.Mining;

// `--device cpu|cuda --dtype fp32|bf16 …`: the plain timing loop (any device); anything else goes to BenchmarkDotNet.
if (args.Contains("--device"))
    return MiningTiming.Run(args);
NativeMemory.Clear();
BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args);
return 0;
