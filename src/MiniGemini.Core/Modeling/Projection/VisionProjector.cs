using System.Text.RegularExpressions;
using MiniGemini.Checkpoints;
using TorchSharp;
using static TorchSharp.torch;

namespace MiniGemini.Modeling;

/// <summary>
/// MGM's vision projector (<c>multimodal_projector/builder.py</c>) from mined features <c>[…, D]</c> to the LLM width
/// <c>[…, H]</c>, built from <c>mm_projector_type</c>: <c>linear</c> (an nn.Linear: keys <c>mm_projector.weight</c>,
/// <c>mm_projector.bias</c>), <c>mlp{N}x_gelu</c> (an nn.Sequential of Linear(D, H) then N−1 × [exact GELU,
/// Linear(H, H)]: keys <c>mm_projector.0.*</c>, <c>mm_projector.2.*</c>, …) or <c>identity</c> (no weights).
/// MGM checkpoints hold the keys under <c>model.</c>.
/// </summary>
public sealed partial class VisionProjector : nn.Module<Tensor, Tensor>
{
    readonly nn.Module<Tensor, Tensor> mm_projector;

    /// <summary>Creates the projector with default-initialised weights (a model built by <see cref="MiniGeminiBuilder"/> loads them, or <c>load_state_dict</c>).</summary>
    /// <param name="projectorType"><c>mm_projector_type</c>: <c>linear</c>, <c>mlp{N}x_gelu</c> (N ≥ 1) or <c>identity</c>.</param>
    /// <param name="mmHiddenSize">D, the width of the mined features (<c>mm_hidden_size</c>).</param>
    /// <param name="hiddenSize">H, the LLM's <c>hidden_size</c>.</param>
    /// <exception cref="ModelLoadException">Unknown projector type.</exception>
    public VisionProjector(string projectorType, long mmHiddenSize, long hiddenSize) : base(nameof(VisionProjector))
    {
        ArgumentNullException.ThrowIfNull(projectorType);
        ArgumentOutOfRangeException.ThrowIfLessThan(mmHiddenSize, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(hiddenSize, 1);
        ProjectorType = projectorType;
        mm_projector = Build(projectorType, mmHiddenSize, hiddenSize);
        RegisterComponents();
        eval(); // inference by default; a trainer switches to train mode
    }

    /// <summary>Creates the projector an MGM config asks for (<c>mm_projector_type</c>, <c>mm_hidden_size</c>, <c>hidden_size</c>).</summary>
    /// <exception cref="ModelLoadException">Unknown projector type.</exception>
    public static VisionProjector FromConfig(MgmConfig config) => new(config.ProjectorType, config.MmHiddenSize, config.Llm.HiddenSize);

    /// <summary>The layers, whose keys are a checkpoint's <c>mm_projector.*</c>.</summary>
    internal nn.Module<Tensor, Tensor> Layers => mm_projector;

    /// <summary>The <c>mm_projector_type</c> this projector was built from.</summary>
    public string ProjectorType { get; }

    /// <summary>Projects mined features <c>[…, D]</c> to <c>[…, H]</c>.</summary>
    public override Tensor forward(Tensor features)
    {
        using var _ = inference_mode(!training);
        using var scope = NewDisposeScope();
        return mm_projector.call(features).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Loads <c>mm_projector.*</c> stored under <paramref name="prefix"/> of a file of weights; every other key is left
    /// to other modules.
    /// </summary>
    /// <exception cref="ModelLoadException">A key is missing, unexpected or has the wrong shape.</exception>
    internal LoadReport Load(ITensorSource source, string prefix = "") =>
        StateDictLoader.Load(this, source, prefix, new LoadOptions { IsForeign = key => !key.StartsWith("mm_projector.", StringComparison.Ordinal) });

    static nn.Module<Tensor, Tensor> Build(string type, long inFeatures, long outFeatures)
    {
        if (type == "linear") return LoadingLayers.Linear(inFeatures, outFeatures);
        if (type == "identity") return nn.Identity();
        var mlp = MlpGelu().Match(type);
        if (mlp.Success && int.TryParse(mlp.Groups[1].Value, out int depth) && depth is >= 1 and <= MaxMlpDepth)
        {
            var layers = new List<(string, nn.Module<Tensor, Tensor>)> { ("0", LoadingLayers.Linear(inFeatures, outFeatures)) };
            for (int i = 1; i < depth; i++)
            {
                layers.Add(((2 * i - 1).ToString(), nn.GELU()));
                layers.Add(((2 * i).ToString(), LoadingLayers.Linear(outFeatures, outFeatures)));
            }
            return nn.Sequential(layers);
        }
        throw ModelLoadException.Config(
            $"Unknown mm_projector_type '{type}': expected 'linear', 'identity' or 'mlp{{N}}x_gelu' with 1 ≤ N ≤ {MaxMlpDepth} (e.g. 'mlp2x_gelu').", key: "mm_projector_type");
    }

    /// <summary>The deepest <c>mlp{N}x_gelu</c> accepted (released models use 2), so that a typo cannot build a billion layers.</summary>
    internal const int MaxMlpDepth = 32;

    [GeneratedRegex(@"^mlp(\d+)x_gelu$")]
    private static partial Regex MlpGelu();
}
