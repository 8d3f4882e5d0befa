using TorchSharp;
using static TorchSharp.torch;

namespace MiniGemini.Modeling;

/// <summary>What every layer's attention needs for one forward, built once per forward.</summary>
/// <param name="Rotary">cos/sin tables for the query positions.</param>
/// <param name="Mask">Boolean [B, 1, T, S] (true = attend), or null when <paramref name="IsCausal"/> or nothing is masked.</param>
/// <param name="IsCausal">Plain causal attention over the T new tokens alone (no cache history, no padding).</param>
/// <param name="Cache">The key/value cache, when decoding incrementally.</param>
/// <param name="Probe">Attention probabilities to read for a training loss (forwards without cache only), or null.</param>
internal sealed record AttentionContext(RotaryAngles Rotary, Tensor? Mask, bool IsCausal, KvCache? Cache, AttentionProbe? Probe = null);
