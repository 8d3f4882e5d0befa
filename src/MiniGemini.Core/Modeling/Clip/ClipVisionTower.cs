using TorchSharp;
using static TorchSharp.torch;

namespace MiniGemini.Modeling;

/// <summary>
/// MGM's <c>CLIPVisionTower</c> as its checkpoint keys it: <c>vision_tower.vision_model.*</c>, HF's CLIPVisionModel
/// (whose only child is the <see cref="ClipVisionTransformer"/>) inside the tower wrapper.
/// </summary>
internal sealed class ClipVisionTower : nn.Module
{
    public ClipVisionTower(ClipVisionTransformer transformer) : base("CLIPVisionTower")
    {
        register_module("vision_tower", new Nested("CLIPVisionModel", "vision_model", transformer));
    }

    /// <summary>A module with one named child, for a level of keys with no code of its own.</summary>
    sealed class Nested : nn.Module
    {
        public Nested(string type, string name, nn.Module child) : base(type) => register_module(name, child);
    }
}
