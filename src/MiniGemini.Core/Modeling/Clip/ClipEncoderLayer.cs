using MiniGemini.Checkpoints;
using TorchSharp;
using TorchSharp.Modules;
using TorchSharp.Utils;
using static TorchSharp.torch;

namespace MiniGemini.Modeling;

/// <summary>HF <c>CLIPEncoderLayer</c>: pre-LN residual block, attention then MLP.</summary>
internal sealed class ClipEncoderLayer : nn.Module<Tensor, Tensor>
{
    [ComponentName(Name = "self_attn")] readonly ClipAttention _selfAttn;
    [ComponentName(Name = "layer_norm1")] readonly LayerNorm _layerNorm1;
    [ComponentName(Name = "mlp")] readonly ClipMlp _mlp;
    [ComponentName(Name = "layer_norm2")] readonly LayerNorm _layerNorm2;

    public ClipEncoderLayer(ClipVisionConfig config) : base(nameof(ClipEncoderLayer))
    {
        _selfAttn = new ClipAttention(config);
        _layerNorm1 = nn.LayerNorm(config.HiddenSize, config.LayerNormEps);
        _mlp = new ClipMlp(config);
        _layerNorm2 = nn.LayerNorm(config.HiddenSize, config.LayerNormEps);
        RegisterComponents();
    }

    public override Tensor forward(Tensor x)
    {
        // A scope per layer frees the layer's temporaries (the MLP's [B, N, 4D] above all) as soon as it is done.
        using var scope = NewDisposeScope();
        x = x.Plus(_selfAttn.call(_layerNorm1.call(x))); // [B, N, D]
        x = x.Plus(_mlp.call(_layerNorm2.call(x)));
        return x.MoveToOuterDisposeScope();
    }
}

/// <summary>HF <c>CLIPEncoder</c>: only a holder of the layers (so that keys read <c>encoder.layers.{i}</c>).</summary>
internal sealed class ClipEncoder : nn.Module
{
    [ComponentName(Name = "layers")] readonly ModuleList<ClipEncoderLayer> _layers;

    public ClipEncoder(ClipVisionConfig config) : base(nameof(ClipEncoder))
    {
        _layers = new ModuleList<ClipEncoderLayer>(Enumerable.Range(0, config.NumHiddenLayers).Select(_ => new ClipEncoderLayer(config)).ToArray());
        RegisterComponents();
    }

    public ModuleList<ClipEncoderLayer> Layers => _layers;
}
