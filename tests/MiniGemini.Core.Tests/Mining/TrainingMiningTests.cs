using MiniGemini.Modeling;
using MiniGemini.Tests.Parity;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace MiniGemini.Tests.Mining;

/// <summary>Train mode's factored formulation gives the reference result (training and inference compute one function).</summary>
public sealed class TrainingMiningTests
{
    [Theory]
    [InlineData(1, false)]
    [InlineData(2, true)]
    public void Train_mode_mining_equals_the_reference_and_records_gradients(int grid, bool global)
    {
        using var scope = NewDisposeScope();
        using var mining = MiningTestData.RandomMining(8, 12, seed: 5);
        using var generator = new Generator(6);
        int views = grid * grid + (global ? 1 : 0);
        var lr = randn([2 * views, 9, 8], generator: generator);
        var hr = MiningTestData.RandomMap(2, 12, 12 * grid, generator);
        mining.Implementation = MiningImplementation.Reference;
        var reference = mining.Encode(lr, hr, grid, global);

        mining.train();
        var trained = mining.Encode(lr, hr, grid, global);
        mining.eval();

        TensorAssert.Close(reference, trained.detach(), "train-mode mining", relative: 1e-5);
        Assert.True(trained.requires_grad, "train mode records the graph");
    }
}
