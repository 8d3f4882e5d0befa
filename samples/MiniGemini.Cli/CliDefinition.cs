using System.CommandLine;
using System.CommandLine.Parsing;
using System.Globalization;
using System.Text.RegularExpressions;
using MiniGemini.Cli.Commands;

namespace MiniGemini.Cli;

/// <summary>The command line: three commands sharing the model, sampling and output options.</summary>
sealed partial class CliDefinition
{
    public Option<string?> Model { get; } = new("--model")
    {
        Description = "Mini-Gemini checkpoint folder (config.json, weights, tokenizer). Default: the bundled demo model (a Mini-Gemini trained on the Detail Shapes task).",
        HelpName = "PATH",
    };

    public Option<string> Device { get; } = new("--device")
    {
        HelpName = "DEVICE",
        Description = "cpu, cuda, cuda:N, or auto (CUDA when available, else cpu; CUDA needs a build with -p:TorchBackend=cuda).",
        DefaultValueFactory = _ => "cpu",
    };

    public Option<string?> DType { get; } = new("--dtype")
    {
        Description = "Weight and activation precision: fp32, bf16 or fp16. Default: fp32 on cpu, bf16 on cuda.",
    };

    public Option<string?> Template { get; } = new("--template")
    {
        Description = "Conversation template (vicuna_v1, llava_v1, gemma, mistral_instruct, chatml_direct, llama_3). Default: the model's.",
        HelpName = "NAME",
    };

    public Option<string[]> TowerSearchRoots { get; } = new("--tower-search-root")
    {
        Description = "Folder in which to look for the vision towers config.json names (e.g. model_zoo/OpenAI); repeatable.",
        HelpName = "PATH",
        AllowMultipleArgumentsPerToken = false,
    };

    public Option<double> Temperature { get; } = new("--temperature")
    {
        CustomParser = Number<double>("--temperature", t => t >= 0 && double.IsFinite(t), "a finite number ≥ 0"),
        HelpName = "T",
        Description = "Sampling temperature; 0 (the default) decodes greedily.",
    };

    public Option<double> TopP { get; } = new("--top-p")
    {
        CustomParser = Number<double>("--top-p", p => p > 0 && p <= 1, "in (0, 1]"),
        HelpName = "P",
        Description = "Nucleus sampling mass in (0, 1].",
        DefaultValueFactory = _ => 1.0,
    };

    public Option<int> TopK { get; } = new("--top-k")
    {
        CustomParser = Number<int>("--top-k", k => k >= 0, "an integer ≥ 0"),
        HelpName = "K",
        Description = "Sample among the k most likely tokens; 0 = all.",
        DefaultValueFactory = _ => 50,
    };

    public Option<double> RepetitionPenalty { get; } = new("--repetition-penalty")
    {
        CustomParser = Number<double>("--repetition-penalty", p => p > 0 && double.IsFinite(p), "a finite number > 0"),
        HelpName = "X",
        Description = "Penalty for tokens already generated; 1 = off.",
        DefaultValueFactory = _ => 1.0,
    };

    public Option<long?> Seed { get; } = new("--seed")
    {
        CustomParser = r => Number<long>("--seed", _ => true, "an integer")(r),
        HelpName = "N",
        Description = "Seed for sampling (and for the image server), for reproducible runs.",
    };

    public Option<int?> MaxNewTokens { get; } = new("--max-new-tokens")
    {
        CustomParser = r => Number<int>("--max-new-tokens", n => n >= 1, "an integer ≥ 1")(r),
        Description = "Most tokens per answer. Default: 512 or what the model's context has left (64 for the demo model).",
        HelpName = "N",
    };

    public Option<bool> Json { get; } = new("--json")
    {
        Description = "Print one JSON object per answer on stdout (text, token counts, finish reason, image prompt, model, timing) and no progress.",
    };

    public Option<bool> Quiet { get; } = new("--quiet", "-q")
    {
        Description = "Print only the answer: no progress, notes or statistics on stderr.",
    };

    public Option<bool> Verbose { get; } = new("--verbose", "-v")
    {
        Description = "Log loading details and show stack traces of errors.",
    };

    public Option<string?> Image { get; } = new("--image")
    {
        Description = "Image file to show the model.",
        HelpName = "PATH",
    };

    public Option<string?> Prompt { get; } = new("--prompt")
    {
        Description = "What to ask.",
        HelpName = "TEXT",
    };

    public Option<string> RequiredPrompt { get; } = new("--prompt")
    {
        Description = "What picture to ask for.",
        HelpName = "TEXT",
        Required = true,
    };

    public Option<Uri?> SdUrl { get; } = new("--sd-url")
    {
        Description = "Base address of a txt2img server (AUTOMATIC1111, Forge, SD.Next), e.g. http://127.0.0.1:7860/.",
        HelpName = "URL",
        CustomParser = r =>
        {
            var text = r.Tokens[^1].Value;
            if (Uri.TryCreate(text, UriKind.Absolute, out var uri) && uri.Scheme is "http" or "https") return uri;
            r.AddError($"--sd-url '{text}' is not an absolute http:// or https:// address.");
            return null;
        },
    };

    public Option<bool> DrawShapes { get; } = new("--draw-shapes")
    {
        Description = "Render the caption with the Detail Shapes renderer (for models trained on that task; no server needed).",
    };

    public Option<string?> Output { get; } = new("--output", "-o")
    {
        Description = "Where to save the rendered image (default: generated.png).",
        HelpName = "FILE",
    };

    public RootCommand Root { get; }

    public CliDefinition()
    {
        DType.AcceptOnlyFromAmong("fp32", "bf16", "fp16");
        Device.Validators.Add(r =>
        {
            var value = r.GetValueOrDefault<string>();
            if (!DevicePattern().IsMatch(value)) r.AddError($"--device '{value}' is not cpu, cuda or cuda:N.");
        });
        Template.Validators.Add(r =>
        {
            var name = r.GetValueOrDefault<string?>();
            if (name is null) return;
            try { ConversationTemplate.Get(name); }
            catch (ArgumentException e) { r.AddError(e.Message.Split(" (Parameter", 2)[0]); }
        });

        Option[] shared = [Model, Device, DType, Template, TowerSearchRoots, Temperature, TopP, TopK, RepetitionPenalty, Seed, MaxNewTokens, Json, Quiet, Verbose];
        foreach (var option in shared) option.Recursive = true;

        var describe = new Command("describe", "Answer one question about an image, streaming the answer (default image: the bundled example picture).")
        {
            Image, Prompt,
        };
        describe.SetAction((parse, ct) => DescribeCommand.RunAsync(Settings(parse), parse.GetValue(Image), parse.GetValue(Prompt), ct));

        var chat = new Command("chat", "Talk with the model, one line per message, until an empty line, 'exit' or end of input; the image goes with the first message (default on the bundled model: its example picture).")
        {
            Image,
        };
        chat.SetAction((parse, ct) => ChatCommand.RunAsync(Settings(parse), parse.GetValue(Image), ct));

        var generate = new Command("generate", "Ask for a picture (Mini-Gemini's <GEN> request): prints the answer and the diffusion prompt the model wrote, and renders it with --sd-url or --draw-shapes.")
        {
            RequiredPrompt, Image, SdUrl, DrawShapes, Output,
        };
        generate.SetAction((parse, ct) => GenerateCommand.RunAsync(Settings(parse), parse.GetRequiredValue(RequiredPrompt), parse.GetValue(Image),
            parse.GetValue(SdUrl), parse.GetValue(DrawShapes), parse.GetValue(Output), ct));

        Root = new RootCommand("Mini-Gemini vision-language models on TorchSharp: describe images, chat about them, ask for pictures.")
        {
            describe, chat, generate,
            DatasetCommand.Define(this), EvalCommand.Define(this), TrainCommand.Define(this), PlotCommand.Define(),
        };
        foreach (var option in shared) Root.Options.Add(option);
    }

    /// <summary>The shared options of a parsed command line.</summary>
    public CommonSettings Settings(ParseResult parse)
    {
        var device = parse.GetValue(Device)!;
        var model = parse.GetValue(Model);
        return new CommonSettings
        {
            ModelPath = model ?? BundledModel.ModelPath,
            IsBundledModel = model is null,
            Device = device,
            Precision = PrecisionOf(parse.GetValue(DType), device),
            Template = parse.GetValue(Template),
            TowerSearchRoots = parse.GetValue(TowerSearchRoots) ?? [],
            Generation = new GenerationOptions
            {
                Temperature = parse.GetValue(Temperature),
                TopP = parse.GetValue(TopP),
                TopK = parse.GetValue(TopK),
                RepetitionPenalty = parse.GetValue(RepetitionPenalty),
                Seed = parse.GetValue(Seed),
                MaxNewTokens = parse.GetValue(MaxNewTokens) ?? (model is null ? CommonSettings.BundledMaxNewTokens : CommonSettings.DefaultMaxNewTokens),
            },
            MaxNewTokensGiven = parse.GetValue(MaxNewTokens) is not null,
            Json = parse.GetValue(Json),
            Quiet = parse.GetValue(Quiet),
            Verbose = parse.GetValue(Verbose),
        };
    }

    static ModelPrecision PrecisionOf(string? dtype, string device) => dtype switch
    {
        "fp32" => ModelPrecision.Float32,
        "bf16" => ModelPrecision.BFloat16,
        "fp16" => ModelPrecision.Float16,
        _ => device == "cpu" ? ModelPrecision.Float32 : ModelPrecision.BFloat16,
    };

    /// <summary>Parses a number and checks its range, reporting either problem as a usage error naming the option.</summary>
    static Func<ArgumentResult, T> Number<T>(string option, Func<T, bool> inRange, string rule) where T : struct, IParsable<T> => result =>
    {
        if (result.Tokens.Count == 0) return default;
        var text = result.Tokens[^1].Value;
        if (!T.TryParse(text, CultureInfo.InvariantCulture, out var value)) result.AddError($"{option} '{text}' is not {rule}.");
        else if (!inRange(value)) result.AddError($"{option} must be {rule} (got {text}).");
        return value;
    };

    [GeneratedRegex(@"^(cpu|cuda(:\d+)?)$")]
    private static partial Regex DevicePattern();
}
