using System.Text.Json.Nodes;
using MiniGemini.Checkpoints;
using MiniGemini.Modeling;
using MiniGemini.Tests.Parity;
using Xunit;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace MiniGemini.Tests.Mining;

/// <summary>Patch info mining + projector against the PyTorch fixtures, for every implementation.</summary>
public sealed class MiningParityTests(ITestOutputHelper output)
{
    static readonly MiningVariant[] Variants = Enum.GetValues<MiningVariant>();

    /// <summary>Every case of every mining fixture folder's config.json, for every implementation.</summary>
    public static TheoryData<string, string, MiningVariant> MiningCases()
    {
        var data = new TheoryData<string, string, MiningVariant>();
        foreach (var id in FixtureCatalog.Cases(FixtureKind.Mining))
        {
            var config = JsonNode.Parse(File.ReadAllText(Path.Combine(FixtureCatalog.Resolve(id), "config.json")))!;
            foreach (var (name, _) in config["cases"]!.AsObject())
                foreach (var variant in Variants)
                    data.Add(id, name, variant);
        }
        return data;
    }

    public static TheoryData<string, MiningVariant> MgmCases()
    {
        var data = new TheoryData<string, MiningVariant>();
        foreach (var id in FixtureCatalog.Cases(FixtureKind.Mgm))
            foreach (var variant in Variants)
                data.Add(id, variant);
        return data;
    }

    [Theory]
    [MemberData(nameof(MiningCases))]
    public void Mined_and_projected_features_match_the_reference(string folderId, string caseName, MiningVariant variant)
    {
        using var scope = NewDisposeScope();
        var folder = FixtureCatalog.Resolve(folderId);
        var config = JsonNode.Parse(File.ReadAllText(Path.Combine(folder, "config.json")))!;
        var @case = config["cases"]![caseName]!;
        using var weights = Checkpoint.Open(Path.Combine(folder, "weights.safetensors"));
        using var mining = new PatchInfoMining((long)config["mm_hidden_size"]!, (long)config["mm_hidden_size_aux"]!);
        using var projector = new VisionProjector((string)config["mm_projector_type"]!, (long)config["mm_hidden_size"]!, (long)config["hidden_size"]!);
        mining.Load(weights);
        projector.Load(weights);
        MiningTestData.Configure(mining, variant);
        using var io = FixtureIo.Open(folder);

        var mined = mining.Encode(io[$"{caseName}.lr_features"], io[$"{caseName}.hr_features"],
            (int?)@case["image_grid"] ?? 1, (bool?)@case["image_global"] ?? false);
        var minedError = TensorAssert.Close(io[$"{caseName}.mined"], mined, $"{caseName}.mined ({variant})");
        var projectedError = TensorAssert.Close(io[$"{caseName}.projected"], projector.call(mined), $"{caseName}.projected ({variant})");
        output.WriteLine($"{folderId} {caseName} {variant}: max |Δ| mined {minedError:E2}, projected {projectedError:E2}");
    }

    [Theory]
    [MemberData(nameof(MgmCases))]
    public void Whole_model_fixtures_mine_and_project_from_the_mgm_checkpoint(string folderId, MiningVariant variant)
    {
        using var scope = NewDisposeScope();
        var folder = FixtureCatalog.Resolve(folderId);
        var config = MgmConfig.Load(Path.Combine(folder, "model", "config.json"));
        using var checkpoint = Checkpoint.Open(Path.Combine(folder, "model"));
        using var mining = PatchInfoMining.FromConfig(config);
        using var projector = VisionProjector.FromConfig(config);
        mining.Load(checkpoint, "model.");
        projector.Load(checkpoint, "model.");
        MiningTestData.Configure(mining, variant);
        using var io = FixtureIo.Open(folder);

        var mined = mining.Encode(io["lr_features"], io["hr_fused"], config.ImageGrid, config.ImageGlobal);
        var minedError = TensorAssert.Close(io["mined"], mined, $"mined ({variant})");
        var tokensError = TensorAssert.Close(io["image_tokens"], projector.call(mined), $"image_tokens ({variant})");
        output.WriteLine($"{folderId} {variant}: max |Δ| mined {minedError:E2}, image_tokens {tokensError:E2}");
    }
}
