using BenchmarkDotNet.Running;

if (args.Length > 0 && args[0] == "llm-decode") return MiniGemini.Benchmarks.LlmDecodeConsole.Run(args[1..]);
if (args.Length > 0 && args[0] == "llm-parity") return MiniGemini.Benchmarks.LlmDecodeConsole.RunParity(args[1..]);
BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args);
return 0;
