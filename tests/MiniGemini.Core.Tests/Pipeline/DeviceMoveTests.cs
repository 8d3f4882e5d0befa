using System.Reflection;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace MiniGemini.Tests.Pipeline;

/// <summary>
/// Every tensor the model uses must follow it to its device: TorchSharp's Module.to() leaves non-persistent buffers
/// and any tensor a module keeps outside its parameters behind, which otherwise only shows on a GPU as a device-mismatch
/// error. The meta device shows it on any machine.
/// </summary>
public sealed class DeviceMoveTests
{
    static readonly Device Meta = new(DeviceType.META);

    [Fact]
    public void After_a_move_no_module_keeps_a_tensor_on_the_old_device()
    {
        using var model = MiniGeminiBuilder.FromPretrained(TinyModelFixture.ModelFolder).Build();
        model.Module.To(Meta, ScalarType.Float32);
        // The building blocks whose layers the tree holds under checkpoint names keep state of their own (mining's folded weights).
        var modules = new nn.Module?[] { model.Module, model.Module.Mining, model.Module.AuxVisionTower, model.Module.Projector }.OfType<nn.Module>().ToArray();
        var left = modules.SelectMany(m => m.named_modules().Select(n => n.module).Prepend(m))
            .SelectMany(TensorFields)
            .Where(f => f.Tensor.device_type != DeviceType.META)
            .Select(f => $"{f.Owner}.{f.Field} on {f.Tensor.device}")
            .ToList();
        Assert.Empty(left);
    }

    static IEnumerable<(string Owner, string Field, Tensor Tensor)> TensorFields(nn.Module module)
    {
        for (var type = module.GetType(); type is not null && type != typeof(nn.Module); type = type.BaseType)
            foreach (var field in type.GetFields(BindingFlags.Instance | BindingFlags.NonPublic | BindingFlags.Public | BindingFlags.DeclaredOnly))
            {
                var value = field.GetValue(module);
                var tensors = value switch
                {
                    Tensor t => [t],
                    IEnumerable<Tensor> many => many,
                    _ => [],
                };
                foreach (var t in tensors)
                    if (t is not null && !t.IsInvalid) yield return (module.GetType().Name, field.Name, t);
            }
    }
}
