using MiniGemini.Generation;
using MiniGemini.Text;

namespace MiniGemini;

/// <summary>One exchange of a conversation: the user's text and images and, once answered, the assistant's text.</summary>
/// <param name="User">The user's text, without any <c>&lt;image&gt;</c> prefix (see <see cref="ConversationTemplate.BuildPrompt"/>).</param>
/// <param name="Assistant">The answer; null for the exchange the model is to answer.</param>
/// <param name="Images">How many images the user sent with this text.</param>
public sealed record ChatExchange(string User, string? Assistant = null, int Images = 0);

/// <summary>
/// A conversation template of MGM (<c>mgm/conversation.py</c>), rendering a prompt exactly as the Python reference
/// does: system prompts, roles and separators verbatim, completed assistant turns, MGM's CLI handling of images and
/// of image generation. Templates are chosen by <see cref="Select"/> from the tokenizer and model type, or by name
/// with <see cref="Get"/>.
/// </summary>
public sealed class ConversationTemplate
{
    enum Style { Two, Mpt, Llama2, Llama3, Gemma }

    const string ChatMlSystemHeader = "<|im_start|>system\n";
    const string Llama3SystemHeader = "<|start_header_id|>system<|end_header_id|>\n\n";

    const string LlavaVisionSystem =
        "You are a helpful language and vision assistant. You are able to understand the visual content that the user provides, " +
        "and assist the user with a variety of tasks using natural language.";

    /// <summary><c>vicuna_v1</c> (alias <c>v1</c>): Vicuna-7B/13B models.</summary>
    public static ConversationTemplate VicunaV1 { get; } = new(
        "vicuna_v1", Style.Two, "",
        "A chat between a curious user and an artificial intelligence assistant. The assistant gives helpful, detailed, and polite answers to the user's questions.",
        "USER", "ASSISTANT", " ", "</s>", stop: ["</s>"], stopTokens: ["</s>"], aliases: ["v1"]);

    /// <summary><c>llava_v1</c>: as <see cref="VicunaV1"/> with LLaVA's "curious human" system prompt.</summary>
    public static ConversationTemplate LlavaV1 { get; } = new(
        "llava_v1", Style.Two, "",
        "A chat between a curious human and an artificial intelligence assistant. The assistant gives helpful, detailed, and polite answers to the human's questions.",
        "USER", "ASSISTANT", " ", "</s>", stop: ["</s>"], stopTokens: ["</s>"]);

    /// <summary><c>gemma</c>: MGM-2B. A completed model turn ends with <c>&lt;end_of_turn&gt;\n&lt;eos&gt;</c>.</summary>
    public static ConversationTemplate Gemma { get; } = new(
        "gemma", Style.Gemma, "", "", "user", "model", "", "<eos>",
        stop: ["<end_of_turn>", "<eos>"], stopTokens: ["<end_of_turn>", "<eos>"]);

    /// <summary><c>mistral_instruct</c>: MGM-8x7B (Mixtral-Instruct), <c>[INST] … [/INST]</c>.</summary>
    public static ConversationTemplate MistralInstruct { get; } = new(
        "mistral_instruct", Style.Llama2, "", "", "USER", "ASSISTANT", "<s>", "</s>", stop: ["</s>"], stopTokens: ["</s>"]);

    /// <summary><c>chatml_direct</c> (alias <c>mistral_direct</c>): MGM-34B (Nous-Hermes-2-Yi).</summary>
    public static ConversationTemplate ChatMlDirect { get; } = new(
        "chatml_direct", Style.Mpt, ChatMlSystemHeader, "Answer the questions.",
        "<|im_start|>user\n", "<|im_start|>assistant\n", "<|im_end|>", null,
        stop: ["<|im_end|>"], stopTokens: ["<|im_end|>"], aliases: ["mistral_direct"]);

    /// <summary>
    /// <c>llama_3</c>: MGM-8B. As trained, the assistant's header says <c>system</c>, not <c>assistant</c>; the
    /// tokenizer adds <c>&lt;|begin_of_text|&gt;</c>.
    /// </summary>
    public static ConversationTemplate Llama3 { get; } = new(
        "llama_3", Style.Llama3, Llama3SystemHeader, LlavaVisionSystem,
        "<|start_header_id|>user<|end_header_id|>\n\n", Llama3SystemHeader, "<|eot_id|>", null,
        stop: ["<|eot_id|>"], stopTokens: ["<|eot_id|>", "<|end_of_text|>"]);

    /// <summary>Every template, in the order above.</summary>
    public static IReadOnlyList<ConversationTemplate> All { get; } = [VicunaV1, LlavaV1, Gemma, MistralInstruct, ChatMlDirect, Llama3];

    readonly Style _style;
    readonly string _systemHeader, _system;
    readonly string _userRole, _assistantRole, _separator;
    readonly string? _separator2;
    readonly string[] _aliases;

    ConversationTemplate(
        string name, Style style, string systemHeader, string system, string userRole, string assistantRole, string separator, string? separator2,
        string[] stop, string[] stopTokens, string[]? aliases = null)
    {
        Name = name;
        _style = style;
        (_systemHeader, _system) = (systemHeader, system);
        _userRole = userRole;
        _assistantRole = assistantRole;
        _separator = separator;
        _separator2 = separator2;
        StopStrings = stop;
        StopTokens = stopTokens;
        _aliases = aliases ?? [];
    }

    /// <summary>The template's key in <c>conv_templates</c> (e.g. <c>vicuna_v1</c>).</summary>
    public string Name { get; }

    /// <summary>The system string, verbatim (for chatml/llama_3 it includes the system header).</summary>
    public string SystemPrompt => _systemHeader + _system;

    /// <summary>Text that ends an answer; a streaming front end cuts the answer there.</summary>
    public IReadOnlyList<string> StopStrings { get; }

    /// <summary>Tokens that end an answer besides the tokenizer's EOS (see <see cref="StopTokenIds"/>).</summary>
    public IReadOnlyList<string> StopTokens { get; }

    /// <summary>
    /// The same template with another system prompt, written where the template keeps it (after the system header for
    /// chatml_direct and llama_3, inside <c>&lt;&lt;SYS&gt;&gt;</c> for mistral_instruct). gemma has no system role: the text
    /// goes before the first turn.
    /// </summary>
    public ConversationTemplate WithSystemPrompt(string systemPrompt)
    {
        ArgumentNullException.ThrowIfNull(systemPrompt);
        var system = _style == Style.Gemma && systemPrompt.Length > 0 ? systemPrompt + "\n\n" : systemPrompt;
        return new ConversationTemplate(Name, _style, _systemHeader, system, _userRole, _assistantRole, _separator, _separator2,
            [.. StopStrings], [.. StopTokens], _aliases);
    }

    /// <summary>The template for a name or alias of <c>conv_templates</c> (<c>vicuna_v1</c>, <c>v1</c>, <c>llava_v1</c>, <c>gemma</c>, <c>mistral_instruct</c>, <c>chatml_direct</c>, <c>mistral_direct</c>, <c>llama_3</c>).</summary>
    /// <exception cref="ArgumentException">Unknown name.</exception>
    public static ConversationTemplate Get(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        return All.FirstOrDefault(t => t.Name == name || t._aliases.Contains(name))
            ?? throw new ArgumentException(
                $"Unknown conversation template '{name}'. Known: {string.Join(", ", All.SelectMany(t => t._aliases.Prepend(t.Name)))}.", nameof(name));
    }

    /// <summary>
    /// Chooses the template a model was trained with, from its tokenizer and its config's <c>model_type</c> /
    /// <c>architectures</c> (never from a folder name): <c>&lt;|eot_id|&gt;</c> in the vocabulary → llama_3;
    /// <c>&lt;start_of_turn&gt;</c> or a Gemma model → gemma; <c>&lt;|im_start|&gt;</c> → chatml_direct; a Mixtral or
    /// Mistral model → mistral_instruct; otherwise vicuna_v1.
    /// </summary>
    public static ConversationTemplate Select(MiniGeminiTokenizer tokenizer, string? modelType = null, IEnumerable<string>? architectures = null)
    {
        ArgumentNullException.ThrowIfNull(tokenizer);
        var names = (architectures ?? []).Append(modelType ?? "").ToArray();
        bool Mentions(string family) => names.Any(n => n.Contains(family, StringComparison.OrdinalIgnoreCase));

        if (tokenizer.TokenToId("<|eot_id|>") is not null) return Llama3;
        if (tokenizer.TokenToId("<start_of_turn>") is not null || Mentions("gemma")) return Gemma;
        if (tokenizer.TokenToId("<|im_start|>") is not null) return ChatMlDirect;
        if (Mentions("mixtral") || Mentions("mistral")) return MistralInstruct;
        return VicunaV1;
    }

    /// <summary>The tokenizer's end-of-sequence ids and those of <see cref="StopTokens"/> that the vocabulary has.</summary>
    public IReadOnlyList<int> StopTokenIds(MiniGeminiTokenizer tokenizer)
    {
        ArgumentNullException.ThrowIfNull(tokenizer);
        var ids = tokenizer.EosIds.ToList();
        foreach (var token in StopTokens)
            if (tokenizer.TokenToId(token) is { } id && !ids.Contains(id)) ids.Add(id);
        return ids;
    }

    /// <summary>
    /// Renders a conversation as the MGM CLI does: each user text is prefixed with <c>"&lt;image&gt;\n"</c> once per image
    /// of its exchange (<see cref="ChatExchange.Images"/>); with <paramref name="generateImage"/> the literal
    /// <c>" &lt;GEN&gt;"</c> is appended to the last user text; when the prompt then holds two or more
    /// <c>&lt;image&gt;</c>, each is prefixed with <c>Image k:</c>. The last exchange may leave
    /// <see cref="ChatExchange.Assistant"/> null: the prompt then ends where the model continues.
    /// </summary>
    /// <returns>The prompt as one string, the reference's <c>conv.get_prompt()</c>.</returns>
    /// <exception cref="ArgumentException">No exchanges, an earlier exchange has no answer, or an image count is negative.</exception>
    public string BuildPrompt(IReadOnlyList<ChatExchange> exchanges, bool generateImage = false) =>
        PromptSegment.Join(Render(exchanges, generateImage));

    /// <summary>
    /// Renders a conversation as <see cref="BuildPrompt"/> does, as scaffold and content: what the template writes
    /// (roles, separators, control tokens, image slots, <c>&lt;GEN&gt;</c>) is scaffold; the system prompt and the
    /// messages are content, which <see cref="ImageSlotTokenizer.Tokenize(MiniGeminiTokenizer, IReadOnlyList{PromptSegment})"/>
    /// encodes literally.
    /// </summary>
    /// <exception cref="ArgumentException">No exchanges, an earlier exchange has no answer, or an image count is negative.</exception>
    public IReadOnlyList<PromptSegment> Render(IReadOnlyList<ChatExchange> exchanges, bool generateImage = false)
    {
        ArgumentNullException.ThrowIfNull(exchanges);
        if (exchanges.Count == 0) throw new ArgumentException("A conversation needs at least one exchange.", nameof(exchanges));
        int totalImages = 0;
        var messages = new List<(string Role, Message? Message)>();
        for (var i = 0; i < exchanges.Count; i++)
        {
            var (user, assistant, images) = exchanges[i] ?? throw new ArgumentException($"Exchange {i} is null.", nameof(exchanges));
            ArgumentNullException.ThrowIfNull(user, $"{nameof(exchanges)}[{i}].{nameof(ChatExchange.User)}");
            ArgumentOutOfRangeException.ThrowIfNegative(images, $"{nameof(exchanges)}[{i}].{nameof(ChatExchange.Images)}");
            if (assistant is null && i < exchanges.Count - 1)
                throw new ArgumentException($"Exchange {i} has no answer; only the last exchange may be unanswered.", nameof(exchanges));
            totalImages += images;
            var suffix = generateImage && i == exchanges.Count - 1 ? ImageCaption.GenerationSuffix : "";
            // As the reference, a message whose whole text (image slots included) is empty counts as absent.
            messages.Add((_userRole, images == 0 && user.Length + suffix.Length == 0 ? null : new Message(images, user, suffix)));
            messages.Add((_assistantRole, string.IsNullOrEmpty(assistant) ? null : new Message(0, assistant, "")));
        }
        var prompt = new PromptWriter(numberImages: totalImages >= 2);
        Write(messages, prompt);
        return prompt.Segments;
    }

    /// <summary>A message: its image slots, its text (content) and a scaffold suffix.</summary>
    sealed record Message(int Images, string Text, string Suffix);

    void Write(List<(string Role, Message? Message)> messages, PromptWriter w)
    {
        switch (_style)
        {
            case Style.Two:
                w.System(_systemHeader, _system).Scaffold(_separator);
                for (var i = 0; i < messages.Count; i++)
                {
                    var (role, message) = messages[i];
                    if (message is not null) w.Scaffold(role + ": ").Message(message).Scaffold(i % 2 == 0 ? _separator : _separator2 ?? "");
                    else w.Scaffold(role + ":");
                }
                break;
            case Style.Mpt or Style.Llama3:
                w.System(_systemHeader, _system).Scaffold(_separator);
                foreach (var (role, message) in messages)
                {
                    if (message is not null) w.Scaffold(role).Message(message).Scaffold(_separator);
                    else w.Scaffold(role);
                }
                break;
            case Style.Llama2:
                // Python's str.lstrip(sep) strips any of sep's characters, not the prefix: here the leading "<s>".
                for (var i = 0; i < messages.Count; i++)
                {
                    var message = messages[i].Message;
                    if (message is null)
                    {
                        if (i == 0) throw new ArgumentException("The first user message must not be empty.", "exchanges");
                        continue;
                    }
                    if (i % 2 == 0)
                    {
                        w.Scaffold((i == 0 ? _separator.TrimStart(_separator.ToCharArray()) : _separator) + "[INST] ");
                        if (i == 0 && _system.Length > 0) w.Scaffold("<<SYS>>\n").Content(_system).Scaffold("\n<</SYS>>\n\n");
                        w.Message(message).Scaffold(" [/INST]");
                    }
                    else w.Scaffold(" ").Message(message).Scaffold(" " + _separator2);
                }
                break;
            case Style.Gemma:
                w.System(_systemHeader, _system).Scaffold(_separator);
                for (var i = 0; i < messages.Count; i++)
                {
                    var (role, message) = messages[i];
                    w.Scaffold("<start_of_turn>" + role + "\n");
                    if (message is not null) w.Message(message).Scaffold("<end_of_turn>\n" + (i % 2 == 0 ? _separator : _separator2));
                }
                break;
        }
    }

    /// <summary>Collects segments, merging neighbours of the same kind; numbers image slots as MGM's CLI does.</summary>
    sealed class PromptWriter(bool numberImages)
    {
        readonly List<PromptSegment> _segments = [];
        int _images;

        public IReadOnlyList<PromptSegment> Segments => _segments;

        public PromptWriter Scaffold(string text) => Add(text, content: false);

        public PromptWriter Content(string text) => Add(text, content: true);

        public PromptWriter System(string header, string system) => Scaffold(header).Content(system);

        /// <summary>MGM's CLI: with two or more images in the prompt, "Image k:" goes before the k-th <c>&lt;image&gt;</c>.</summary>
        public PromptWriter Message(Message message)
        {
            for (var k = 0; k < message.Images; k++)
                Scaffold((numberImages ? $"Image {++_images}:" : "") + ImageSlotTokenizer.ImageToken + "\n");
            return Content(message.Text).Scaffold(message.Suffix);
        }

        PromptWriter Add(string text, bool content)
        {
            if (text.Length == 0) return this;
            if (_segments.Count > 0 && _segments[^1].IsContent == content)
                _segments[^1] = new PromptSegment(_segments[^1].Text + text, content);
            else _segments.Add(new PromptSegment(text, content));
            return this;
        }
    }

    /// <inheritdoc/>
    public override string ToString() => Name;
}
