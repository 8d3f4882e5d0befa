using System.Globalization;
using TorchSharp;
using static TorchSharp.torch;

namespace MiniGemini.Benchmarks;

/// <summary>The console modes' arguments: <c>--name value</c> pairs, and the words that are not options (e.g. folders).</summary>
sealed class ConsoleArgs
{
    readonly Dictionary<string, string> _options = [];

    public ConsoleArgs(string[] args)
    {
        var words = new List<string>();
        for (int i = 0; i < args.Length; i++)
        {
            if (!args[i].StartsWith("--", StringComparison.Ordinal)) words.Add(args[i]);
            else if (i + 1 < args.Length) _options[args[i][2..]] = args[++i];
            else throw new ArgumentException($"Option '{args[i]}' has no value: use --name value.");
        }
        Words = words;
    }

    /// <summary>The arguments that are not options, in order.</summary>
    public IReadOnlyList<string> Words { get; }

    public string Get(string name, string fallback) => _options.GetValueOrDefault(name, fallback);

    public int Int(string name, int fallback) =>
        _options.TryGetValue(name, out var text) ? int.Parse(text, CultureInfo.InvariantCulture) : fallback;

    /// <summary><c>--dtype fp32|bf16|fp16</c> (default fp32).</summary>
    public ScalarType DType() => Get("dtype", "fp32") switch
    {
        "fp32" => ScalarType.Float32,
        "bf16" => ScalarType.BFloat16,
        "fp16" => ScalarType.Float16,
        var other => throw new ArgumentException($"--dtype {other}: use fp32, bf16 or fp16."),
    };

    /// <summary><c>--device cpu|cuda|cuda:N</c> (default cpu), loading the CUDA backend when asked for.</summary>
    public Device Device()
    {
        var name = Get("device", "cpu");
        if (name.StartsWith("cuda", StringComparison.Ordinal)) InitializeDeviceType(DeviceType.CUDA);
        return new Device(name);
    }
}
