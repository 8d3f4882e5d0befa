using System.Globalization;
using System.Text;
using TorchSharp;
using static TorchSharp.torch;

namespace MiniGemini.Modeling;

/// <summary>
/// A whole decode step — embedding lookup, rotary tables, every layer with its cache write, final norm, head — as
/// one TorchScript function compiled at run time (<c>torch.jit.compile</c>) and called once per token. The eager
/// step dispatches some 30 ops per layer through TorchSharp, each creating managed tensor handles; here libtorch's
/// interpreter runs the same ops without a call from .NET per op (and where libtorch's fuser runs, on GPUs, it may
/// join elementwise chains), which is what a batch-1 step on a fast device is bound by.
/// </summary>
/// <remarks>
/// The script is written for one model: its sizes, family (norm, activation, embedding scale), attention kind,
/// biases, dtype, and whether q/k/v and gate/up are joint tensors or parts (mapped checkpoints keep them apart) are
/// spelled into the source. It does the eager step's ops in the eager step's order and dtypes, so on a CPU in
/// float32 the logits are the eager ones bit for bit; in half precision they may differ by rounding where the eager
/// step's own matrix-vector loop (<see cref="RowLinear"/>) or a fuser sums or rounds otherwise. The weights are passed
/// per call, read from the modules, so loads and moves are seen; a change of dtype, device or joint layout compiles a
/// new script. libtorch reports some compile errors as exceptions but ends the process on others (TorchSharp 0.107
/// does not catch <c>torch::jit::ErrorReport</c>), so every variant the writer produces is compiled by the tests.
/// </remarks>
internal sealed class CompiledDecodeStep : IDisposable
{
    const string Function = "decode_step";

    readonly jit.CompilationUnit _unit;

    CompiledDecodeStep(jit.CompilationUnit unit, Layout layout)
    {
        _unit = unit;
        Compiled = layout;
    }

    /// <summary>What the script was written for.</summary>
    public Layout Compiled { get; }

    /// <summary>What a script for <paramref name="llm"/> as it is now must be written for.</summary>
    public static Layout LayoutOf(CausalLanguageModel llm) =>
        new(llm.DType, llm.Device.type, llm.model.Layers.All(l => l.Attention.Qkv.IsJoint && l.Mlp!.GateUp.IsJoint));

    /// <summary>Whether a step can be compiled for <paramref name="llm"/>: dense families, floating dtypes below float64.</summary>
    public static bool Supports(CausalLanguageModel llm) =>
        !llm.Architecture.IsSparse && llm.DType is ScalarType.Float32 or ScalarType.BFloat16 or ScalarType.Float16;

    /// <summary>
    /// Whether the compiled step is the default for <paramref name="llm"/>: on accelerators, whose decode step waits on
    /// the host. On a CPU libtorch's own time per op is most of a step, so compiling gains little (1.1–1.45× at
    /// dispatch-bound sizes, nothing at real ones, less than nothing in bfloat16 where the eager step's own
    /// matrix-vector product reads the weights faster than libtorch's) for a first use that costs ~100 ms
    /// (docs/benchmarks.md#compiled-decode-step).
    /// </summary>
    public static bool IsDefaultFor(CausalLanguageModel llm) => llm.Device.type != DeviceType.CPU;

    /// <summary>Writes and compiles the script for <paramref name="llm"/>.</summary>
    public static CompiledDecodeStep Compile(CausalLanguageModel llm)
    {
        if (!Supports(llm)) throw new NotSupportedException($"No compiled decode step for {llm.Config.Family} in {llm.DType}.");
        var layout = LayoutOf(llm);
        return FromSource(Source(llm, layout), layout);
    }

    /// <summary>A step from a script of one's own with <see cref="Source"/>'s signature (tests).</summary>
    internal static CompiledDecodeStep FromSource(string source, Layout layout) => new(jit.compile(source), layout);

    /// <summary>
    /// ids [B, 1] at positions [B, 1], key mask [B, cached + 1] or null, the cache (written and advanced by one) →
    /// logits [B, V] in float32, as <see cref="CausalLanguageModel.Forward"/> gives them for the embedded ids.
    /// </summary>
    public Tensor Run(CausalLanguageModel llm, Tensor ids, Tensor positions, Tensor? keyMask, KvCache cache)
    {
        cache.EnsureRoom(1);
        var logits = _unit.invoke<Tensor>(Function, ids, positions, keyMask!, cache.Entries, cache.Length, Weights(llm));
        cache.Advance(1);
        return logits;
    }

    /// <summary>The tensors the script reads, in the order <see cref="Source"/> indexes them: globals, then each layer's.</summary>
    static Tensor[] Weights(CausalLanguageModel llm) =>
    [
        .. Globals(llm).Select(g => g.Tensor),
        .. llm.model.Layers.SelectMany(layer => LayerTensors(layer).Select(t => t.Tensor)),
    ];

    static IEnumerable<(string Name, Tensor Tensor)> Globals(CausalLanguageModel llm)
    {
        yield return ("embed", llm.model.embed_tokens.weight);
        yield return ("final_norm", llm.model.NormWeight);
        yield return ("head", llm.HeadWeight);
        yield return ("inv_freq", llm.model.rotary_emb.InverseFrequencies);
    }

    static IEnumerable<(string Name, Tensor Tensor)> LayerTensors(DecoderLayer layer)
    {
        yield return ("input_norm", layer.InputNormWeight);
        foreach (var t in Linear("qkv", layer.Attention.Qkv)) yield return t;
        foreach (var t in Linear("o", layer.Attention.OutProj)) yield return t;
        yield return ("post_norm", layer.PostAttentionNormWeight);
        foreach (var t in Linear("gate_up", layer.Mlp!.GateUp)) yield return t;
        foreach (var t in Linear("down", layer.Mlp.Down)) yield return t;
    }

    /// <summary>A joint layer as <c>name</c> (and <c>name.bias</c>); one apart as <c>name.0</c>, <c>name.1</c>, … .</summary>
    static IEnumerable<(string, Tensor)> Linear(string name, FusedLinear fused)
    {
        if (fused.IsJoint)
        {
            yield return (name, fused.JointWeight!);
            if (fused.JointBias is { } bias) yield return ($"{name}.bias", bias);
            yield break;
        }
        for (int i = 0; i < fused.Parts.Count; i++)
        {
            yield return ($"{name}.{i}", fused.Parts[i].weight!);
            if (fused.Parts[i].bias is { } bias) yield return ($"{name}.{i}.bias", bias);
        }
    }

    static IEnumerable<(string, Tensor)> Linear(string name, TorchSharp.Modules.Linear linear)
    {
        yield return (name, linear.weight!);
        if (linear.bias is { } bias) yield return ($"{name}.bias", bias);
    }

    /// <summary>The TorchScript source of the step (one function; <see cref="Weights"/> gives its <c>w</c> list).</summary>
    internal static string Source(CausalLanguageModel llm, Layout layout)
    {
        var c = llm.Config;
        var globals = Index(Globals(llm));
        var layer = Index(LayerTensors(llm.model.Layers[0]));
        int perLayer = layer.Count, g = globals.Count;
        string W(string name) => $"w[o + {layer[name]}]";
        string Bias(string name) => layer.ContainsKey($"{name}.bias") ? W($"{name}.bias") : "None";
        string Linear(string input, string name, int parts) => layer.ContainsKey(name)
            ? $"torch.linear({input}, {W(name)}, {Bias(name)})"
            : $"torch.cat([{string.Join(", ", Enumerable.Range(0, parts).Select(i => $"torch.linear({input}, {W($"{name}.{i}")}, {Bias($"{name}.{i}")})"))}], -1)";
        int h = c.NumAttentionHeads, kv = c.NumKeyValueHeads, d = c.HeadDim;

        var s = new StringBuilder();
        s.AppendLine(llm.Architecture.NormScript);
        s.AppendLine($$"""
            def decode_step(ids: Tensor, positions: Tensor, key_mask: Optional[Tensor], entries: List[Tensor], length: int, w: List[Tensor]) -> Tensor:
                b = ids.size(0)
                x = torch.embedding(w[{{globals["embed"]}}], ids)                                  # [B, 1, H]
            """);
        if (llm.Architecture.EmbeddingScale is { } scale)
            s.AppendLine($"    x = x * {Literal(DecoderStack.RoundedTo(scale, layout.DType))}");
        s.AppendLine($$"""
                freqs = positions.float().unsqueeze(-1) * w[{{globals["inv_freq"]}}]     # [B, 1, d/2]
                cos = freqs.cos()
                sin = freqs.sin()
                cos = torch.cat([cos, cos], -1).to(x.dtype).unsqueeze(2)                            # [B, 1, 1, d]
                sin = torch.cat([sin.neg(), sin], -1).to(x.dtype).unsqueeze(2)                      # [B, 1, 1, d], sign folded
                mask: Optional[Tensor] = None
                if key_mask is not None:
                    real = key_mask.ne(0).view(b, 1, 1, key_mask.size(1))                           # [B, 1, 1, S]
                    mask = real.logical_or(real.any(-1, keepdim=True).logical_not())
                for i in range({{c.NumHiddenLayers}}):
                    o = {{g}} + i * {{perLayer}}
                    qkv = {{Linear($"norm(x, {W("input_norm")})", "qkv", 3)}}.view(b, 1, {{h + 2 * kv}}, {{d}})   # [B, 1, h + 2kv, d]
                    qk = qkv.narrow(2, 0, {{h + kv}})
                    rolled = qk.roll({{d / 2}}, -1) * sin
                    qk.mul_(cos).add_(rolled)
                    entry = entries[i]                                                              # [B, allocated, 2kv, d]
                    entry.narrow(1, length, 1).copy_(qkv.narrow(2, {{h}}, {{2 * kv}}))
                    filled = entry.narrow(1, 0, length + 1)
                    k = filled.narrow(2, 0, {{kv}}).transpose(1, 2)                                  # [B, kv, S, d]
                    v = filled.narrow(2, {{kv}}, {{kv}}).transpose(1, 2)
                    q = qkv.narrow(2, 0, {{h}}).view(b, {{kv}}, {{h / kv}}, {{d}})                   # [B, kv, g, d]: grouped query heads
            """);
        s.AppendLine(llm.Architecture.Options.Attention == AttentionKind.Sdpa
            ? "        y = torch.scaled_dot_product_attention(q, k, v, mask, 0.0, False)"
            : $$"""
                    scores = torch.matmul(q, k.transpose(2, 3)) * {{Literal(Math.Pow(d, -0.5))}}
                    if mask is not None:
                        scores = scores.masked_fill(mask.logical_not(), {{Literal(torch.finfo(layout.DType).min)}})
                    y = scores.float().softmax(-1).to(q.dtype).matmul(v)
            """);
        s.AppendLine($$"""
                    x = {{Linear($"y.reshape(b, 1, {h * d})", "o", 1)}} + x
                    gate_up = {{Linear($"norm(x, {W("post_norm")})", "gate_up", 2)}}.chunk(2, -1)
                    x = x + {{Linear($"{Activation.Script(llm.Architecture.MlpActivationName, "gate_up[0]")} * gate_up[1]", "down", 1)}}
                logits = torch.linear(norm(x, w[{{globals["final_norm"]}}]).select(1, -1), w[{{globals["head"]}}])  # [B, V]
                return logits{{(layout.DType == ScalarType.Float32 ? "" : ".float()")}}
            """);
        return s.ToString();
    }

    static Dictionary<string, int> Index(IEnumerable<(string Name, Tensor Tensor)> tensors) =>
        tensors.Select((t, i) => (t.Name, i)).ToDictionary(t => t.Name, t => t.i);

    /// <summary>A float literal TorchScript reads back as the same double.</summary>
    internal static string Literal(double value) => value.ToString("E17", CultureInfo.InvariantCulture);

    /// <summary>Frees the compiled function.</summary>
    public void Dispose() => _unit.Dispose();

    /// <summary>What a script is specific to besides the model's sizes and family.</summary>
    /// <param name="DType">The weights' and activations' dtype.</param>
    /// <param name="Device">Where the weights are.</param>
    /// <param name="Joint">q/k/v and gate/up are joint tensors (false: parts, as a mapped checkpoint keeps them).</param>
    internal sealed record Layout(ScalarType DType, DeviceType Device, bool Joint);
}
