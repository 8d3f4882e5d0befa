using MiniGemini.Training;
using Xunit;

namespace MiniGemini.Tests.Training;

/// <summary>The stage presets select parameters by their MGM checkpoint key prefixes.</summary>
public sealed class TrainingStageTests
{
    [Theory]
    [InlineData("pretrain", "model.vlm_uni_query_projector.0.weight", true)]
    [InlineData("pretrain", "model.mm_projector.0.weight", true)]
    [InlineData("stage1", "model.layers.0.self_attn.q_proj.weight", false)]
    [InlineData("pretrain", "model.vision_tower.vision_tower.vision_model.pre_layrnorm.weight", false)]
    [InlineData("finetune", "model.layers.0.self_attn.q_proj.weight", true)]
    [InlineData("stage2", "lm_head.weight", true)]
    [InlineData("finetune", "model.vision_tower_aux.vision_stem.0.weight", false)]
    [InlineData("language", "model.embed_tokens.weight", true)]
    [InlineData("language", "model.mm_projector.0.weight", false)]
    [InlineData("full", "model.vision_tower_aux.vision_stem.0.weight", true)]
    [InlineData("hr-crops", "model.vision_tower_aux.vision_stem.0.weight", true)]
    [InlineData("hr-crops", "model.vision_tower.vision_tower.vision_model.pre_layrnorm.weight", false)]
    [InlineData("hr-crops", "model.vlm_uni_val_projector.1.weight", false)]
    [InlineData("vision-mining", "model.vlm_uni_val_projector.1.weight", true)]
    [InlineData("vision-mining", "model.vision_tower.vision_tower.vision_model.pre_layrnorm.weight", true)]
    [InlineData("vision-mining", "model.vision_tower_aux.vision_stem.0.weight", false)]
    [InlineData("finetune-language", "model.mm_projector.2.weight", true)]
    [InlineData("finetune-language", "model.layers.3.mlp.down_proj.weight", true)]
    [InlineData("finetune-language", "model.vlm_uni_query_projector.1.weight", false)]
    public void Presets_train_the_parameters_the_paper_names(string stage, string key, bool trains) =>
        Assert.Equal(trains, TrainingStage.Get(stage).Trains(key));

    [Fact]
    public void WithTowers_adds_the_towers_and_unknown_names_are_refused()
    {
        var stage = TrainingStage.Finetune.WithTowers(visionTower: true, auxVisionTower: false);
        Assert.True(stage.Trains("model.vision_tower.vision_tower.vision_model.pre_layrnorm.weight"));
        Assert.False(stage.Trains("model.vision_tower_aux.vision_stem.0.weight"));
        var e = Assert.Throws<ArgumentException>(() => TrainingStage.Get("stage3"));
        Assert.Contains("stage3", e.Message);
    }
}
