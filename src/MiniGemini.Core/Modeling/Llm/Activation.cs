using MiniGemini.Checkpoints;
using TorchSharp;
using static TorchSharp.torch;
using static TorchSharp.torch.nn.functional;

namespace MiniGemini.Modeling;

/// <summary>The MLP activations HF configs name (<c>hidden_act</c> / <c>hidden_activation</c>).</summary>
internal static class Activation
{
    /// <exception cref="ModelLoadException">An activation this library does not implement.</exception>
    public static Func<Tensor, Tensor> FromName(string name) => name switch
    {
        "silu" or "swish" => x => silu(x),
        "gelu" => x => gelu(x),
        // transformers' gelu_new / gelu_fast / gelu_pytorch_tanh are all the tanh approximation.
        "gelu_pytorch_tanh" or "gelu_new" or "gelu_fast" => x => gelu(x, TorchSharp.Modules.GELU.Approximate.tanh),
        "relu" => x => relu(x),
        _ => throw Unsupported(name),
    };

    /// <summary>The same activation of <paramref name="argument"/> as a TorchScript expression.</summary>
    public static string Script(string name, string argument) => name switch
    {
        "silu" or "swish" => $"torch.silu({argument})",
        "gelu" => $"torch.gelu({argument})",
        "gelu_pytorch_tanh" or "gelu_new" or "gelu_fast" => $"torch.gelu({argument}, approximate='tanh')",
        "relu" => $"torch.relu({argument})",
        _ => throw Unsupported(name),
    };

    static ModelLoadException Unsupported(string name) => ModelLoadException.Config(
        $"hidden activation '{name}' is not supported (silu, gelu, gelu_pytorch_tanh, gelu_new, relu).", key: "hidden_act");
}
