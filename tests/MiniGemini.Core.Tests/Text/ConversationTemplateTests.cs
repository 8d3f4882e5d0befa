using System.Text.Json;
using MiniGemini.Tests.Parity;
using MiniGemini.Text;
using Xunit;

namespace MiniGemini.Tests.Text;

/// <summary>Expected prompts are written out from mgm-spec §6 and MGM's conversation.py / cli.py.</summary>
public class ConversationTemplateTests
{
    const string VicunaSystem =
        "A chat between a curious user and an artificial intelligence assistant. The assistant gives helpful, detailed, and polite answers to the user's questions.";
    const string Llama3System =
        "You are a helpful language and vision assistant. You are able to understand the visual content that the user provides, and assist the user with a variety of tasks using natural language.";

    static readonly ChatExchange[] OneQuestion = [new("What is in the picture?", Images: 1)];
    static readonly ChatExchange[] TwoTurns = [new("Describe it.", "A cat."), new("What colour?")];

    [Fact]
    public void VicunaV1()
    {
        var t = ConversationTemplate.Get("vicuna_v1");
        Assert.Equal($"{VicunaSystem} USER: <image>\nWhat is in the picture? ASSISTANT:", t.BuildPrompt(OneQuestion));
        Assert.Equal($"{VicunaSystem} USER: Describe it. ASSISTANT: A cat.</s>USER: What colour? ASSISTANT:", t.BuildPrompt(TwoTurns));
        Assert.Same(t, ConversationTemplate.Get("v1"));
        Assert.Equal(["</s>"], t.StopStrings);
    }

    [Fact]
    public void Gemma()
    {
        var t = ConversationTemplate.Get("gemma");
        Assert.Equal("<start_of_turn>user\n<image>\nWhat is in the picture?<end_of_turn>\n<start_of_turn>model\n", t.BuildPrompt(OneQuestion));
        Assert.Equal(
            "<start_of_turn>user\nDescribe it.<end_of_turn>\n<start_of_turn>model\nA cat.<end_of_turn>\n<eos>" +
            "<start_of_turn>user\nWhat colour?<end_of_turn>\n<start_of_turn>model\n",
            t.BuildPrompt(TwoTurns));
        Assert.Equal("", t.SystemPrompt);
    }

    [Fact]
    public void MistralInstruct()
    {
        var t = ConversationTemplate.Get("mistral_instruct");
        Assert.Equal("[INST] <image>\nWhat is in the picture? [/INST]", t.BuildPrompt(OneQuestion));
        Assert.Equal("[INST] Describe it. [/INST] A cat. </s><s>[INST] What colour? [/INST]", t.BuildPrompt(TwoTurns));
    }

    [Fact]
    public void ChatMlDirect()
    {
        var t = ConversationTemplate.Get("chatml_direct");
        Assert.Equal(
            "<|im_start|>system\nAnswer the questions.<|im_end|><|im_start|>user\n<image>\nWhat is in the picture?<|im_end|><|im_start|>assistant\n",
            t.BuildPrompt(OneQuestion));
        Assert.Equal(
            "<|im_start|>system\nAnswer the questions.<|im_end|><|im_start|>user\nDescribe it.<|im_end|><|im_start|>assistant\nA cat.<|im_end|>" +
            "<|im_start|>user\nWhat colour?<|im_end|><|im_start|>assistant\n",
            t.BuildPrompt(TwoTurns));
        Assert.Same(t, ConversationTemplate.Get("mistral_direct"));
        Assert.Equal(["<|im_end|>"], t.StopStrings);
    }

    [Fact]
    public void Llama3KeepsTheSystemHeaderForTheAssistant()
    {
        var t = ConversationTemplate.Get("llama_3");
        Assert.Equal(
            $"<|start_header_id|>system<|end_header_id|>\n\n{Llama3System}<|eot_id|>" +
            "<|start_header_id|>user<|end_header_id|>\n\n<image>\nWhat is in the picture?<|eot_id|>" +
            "<|start_header_id|>system<|end_header_id|>\n\n",
            t.BuildPrompt(OneQuestion));
        Assert.Equal(
            $"<|start_header_id|>system<|end_header_id|>\n\n{Llama3System}<|eot_id|>" +
            "<|start_header_id|>user<|end_header_id|>\n\nDescribe it.<|eot_id|>" +
            "<|start_header_id|>system<|end_header_id|>\n\nA cat.<|eot_id|>" +
            "<|start_header_id|>user<|end_header_id|>\n\nWhat colour?<|eot_id|>" +
            "<|start_header_id|>system<|end_header_id|>\n\n",
            t.BuildPrompt(TwoTurns));
        Assert.Equal(["<|eot_id|>"], t.StopStrings);
        Assert.Contains("<|eot_id|>", t.StopTokens);
    }

    [Fact]
    public void SeveralImagesAreNumberedAsTheCliDoes()
    {
        var t = ConversationTemplate.Get("vicuna_v1");
        Assert.Equal(
            $"{VicunaSystem} USER: Image 1:<image>\nImage 2:<image>\nCompare them. ASSISTANT:",
            t.BuildPrompt([new("Compare them.", Images: 2)]));
        // Images go before the user text of the exchange they came with.
        Assert.Equal(
            $"{VicunaSystem} USER: <image>\nDescribe it. ASSISTANT: A cat.</s>USER: What colour? ASSISTANT:",
            t.BuildPrompt([TwoTurns[0] with { Images = 1 }, TwoTurns[1]]));
        Assert.Equal(
            $"{VicunaSystem} USER: Describe it. ASSISTANT: A cat.</s>USER: <image>\nWhat colour? ASSISTANT:",
            t.BuildPrompt([TwoTurns[0], TwoTurns[1] with { Images = 1 }]));
    }

    [Fact]
    public void GenerationSuffixGoesAfterTheLastUserText()
    {
        Assert.Equal(
            $"{VicunaSystem} USER: <image>\nDraw a cat. <GEN> ASSISTANT:",
            ConversationTemplate.VicunaV1.BuildPrompt([new("Draw a cat.", Images: 1)], generateImage: true));
        Assert.Equal(
            "[INST] Describe it. [/INST] A cat. </s><s>[INST] What colour? <GEN> [/INST]",
            ConversationTemplate.MistralInstruct.BuildPrompt(TwoTurns, generateImage: true));
    }

    [Fact]
    public void LlavaV1RendersTheMgmFixturePrompt()
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(FixtureCatalog.Bundled("mgm-tiny"), "case.json")));
        var prompt = doc.RootElement.GetProperty("prompt").GetString();
        Assert.Equal(prompt, ConversationTemplate.Get("llava_v1").BuildPrompt([new("Describe the picture.", Images: 1)]));
    }

    [Fact]
    public void InvalidConversationsAreRejected()
    {
        Assert.Throws<ArgumentException>(() => ConversationTemplate.VicunaV1.BuildPrompt([]));
        Assert.Throws<ArgumentException>(() => ConversationTemplate.VicunaV1.BuildPrompt([new("q1"), new("q2")]));
        Assert.Throws<ArgumentException>(() => ConversationTemplate.MistralInstruct.BuildPrompt([new("")]));
        var e = Assert.Throws<ArgumentException>(() => ConversationTemplate.Get("alpaca"));
        Assert.Contains("vicuna_v1", e.Message);
    }

    [Fact]
    public void SelectionUsesTokenizerContentsAndModelTypeNotNames()
    {
        var sp = TextTestData.Small;
        Assert.Same(ConversationTemplate.VicunaV1, ConversationTemplate.Select(sp));
        Assert.Same(ConversationTemplate.VicunaV1, ConversationTemplate.Select(sp, "mgm", ["MGMLlamaForCausalLM"]));
        Assert.Same(ConversationTemplate.MistralInstruct, ConversationTemplate.Select(sp, "mgm_mixtral", ["MiniGeminiMixtralForCausalLM"]));
        Assert.Same(ConversationTemplate.Gemma, ConversationTemplate.Select(sp, null, ["MiniGeminiGemmaForCausalLM"]));

        using var llama3 = SyntheticByteLevelFolder.Create(SyntheticByteLevelFolder.Layout.TokenizerJson);
        var byteLevel = MiniGeminiTokenizer.FromFolder(llama3.Path);
        // <|eot_id|> wins over a model type that would otherwise suggest something else.
        Assert.Same(ConversationTemplate.Llama3, ConversationTemplate.Select(byteLevel, "mgm_mixtral"));

        using var chatml = SentencePieceFolder.WithConfig(
            """{"added_tokens_decoder": {"400": {"content": "<|im_start|>", "special": true}, "401": {"content": "<|im_end|>", "special": true}}}""");
        Assert.Same(ConversationTemplate.ChatMlDirect, ConversationTemplate.Select(MiniGeminiTokenizer.FromFolder(chatml.Path), "mgm"));

        using var gemma = SentencePieceFolder.WithConfig(
            """{"added_tokens_decoder": {"400": {"content": "<start_of_turn>", "special": true}, "401": {"content": "<end_of_turn>", "special": true}}}""");
        Assert.Same(ConversationTemplate.Gemma, ConversationTemplate.Select(MiniGeminiTokenizer.FromFolder(gemma.Path)));
    }

    [Fact]
    public void StopTokenIdsResolveThroughTheTokenizer()
    {
        using var folder = SyntheticByteLevelFolder.Create(SyntheticByteLevelFolder.Layout.TokenizerJson);
        var tokenizer = MiniGeminiTokenizer.FromFolder(folder.Path);
        var ids = ConversationTemplate.Llama3.StopTokenIds(tokenizer);
        Assert.Equal(
            new[] { tokenizer.TokenToId("<|end_of_text|>")!.Value, tokenizer.TokenToId("<|eot_id|>")!.Value }.Order(),
            ids.Order());
        Assert.Equal([2], ConversationTemplate.VicunaV1.StopTokenIds(TextTestData.Small));
    }

    [Fact]
    public void An_empty_question_without_image_renders_as_an_absent_message_as_in_the_reference()
    {
        // conversation.py, SeparatorStyle.TWO: `if message: … else: ret += role + ":"`.
        var vicuna = ConversationTemplate.VicunaV1;
        Assert.Equal(vicuna.SystemPrompt + " USER:ASSISTANT:", vicuna.BuildPrompt([new ChatExchange("")]));
        Assert.Equal(vicuna.SystemPrompt + " USER: <image>\n ASSISTANT:", vicuna.BuildPrompt([new ChatExchange("", Images: 1)]));
    }
}
