using MiniGemini.Text;
using SixLabors.ImageSharp;
using SixLabors.ImageSharp.Processing;

namespace MiniGemini.Training.DetailShapes;

/// <summary>
/// The Detail Shapes training stream: sample <c>i</c> of a seed is a fresh scene with a conversation of its questions
/// in random order (image before the first, describe last or alone, no colour question after a digit question; each
/// question about one object focused on that object's image token, see <see cref="TrainingSample.AnswerFocus"/>), or,
/// for a share of the samples, a draw request without image. The stream is a pure function of (seed, i), so any
/// sample can be regenerated and a resumed run sees the same data.
/// </summary>
public sealed class DetailShapesTraining
{
    /// <summary>Creates the stream.</summary>
    /// <param name="seed">Seed of the stream (keep it apart from the seeds of evaluation sets).</param>
    /// <param name="maxExchanges">Questions per conversation at most (all the scene allows when fewer).</param>
    /// <param name="drawShare">Share of the samples that are draw requests.</param>
    /// <param name="pictures">
    /// 0: every sample has a fresh scene. N: the conversations of <see cref="Sample"/> ask (new questions, in a new
    /// order) about N scenes in turn, so that a trainer can keep their image tokens
    /// (<see cref="TrainingOptions.ImageTokenCacheSize"/>).
    /// </param>
    public DetailShapesTraining(int seed, int maxExchanges = 12, double drawShare = 0.1, int pictures = 0)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(maxExchanges, 1);
        ArgumentOutOfRangeException.ThrowIfNegative(pictures);
        if (!(drawShare >= 0 && drawShare <= 1)) throw new ArgumentOutOfRangeException(nameof(drawShare), drawShare, "The draw share must be in [0, 1].");
        (Seed, MaxExchanges, DrawShare, Pictures) = (seed, maxExchanges, drawShare, pictures);
    }

    /// <summary>Seed of the stream.</summary>
    public int Seed { get; }
    /// <summary>Questions per conversation at most.</summary>
    public int MaxExchanges { get; }
    /// <summary>Share of draw requests.</summary>
    public double DrawShare { get; }
    /// <summary>Scenes the conversations take turns on, or 0 for a fresh scene per sample.</summary>
    public int Pictures { get; }

    /// <summary>Sample <paramref name="index"/> of the stream.</summary>
    public TrainingSample Sample(long index)
    {
        var random = new Random(Mix(Seed, index));
        var name = $"detail-shapes seed {Seed} sample {index}";
        if (random.NextDouble() < DrawShare)
        {
            var draw = QuestionWriter.Draw(random);
            return new TrainingSample(null, [new ChatExchange(draw.Question, draw.Answer)], GenerateImage: true, Name: name);
        }
        var scene = new SceneSampler(Pictures == 0 ? random : new Random(Mix(Seed ^ 0x3C3C3C3C, index % Pictures))).Next();
        var all = QuestionWriter.Questions(scene);
        // Describe's answer holds every other answer, which later turns could copy instead of looking at the picture:
        // it is asked last, or, as often as any question comes first, alone (so that it is also learned right after
        // the image, where a single question is asked).
        var asked = random.Next(all.Count) == 0
            ? all.Where(q => q.Type == QuestionType.Describe)
            : all.OrderBy(_ => random.Next()).Take(MaxExchanges).OrderBy(q => q.Type == QuestionType.Describe);
        var questions = ColorsBeforeDigits(asked.ToList());
        return new TrainingSample(ImageInput.FromBytes(SceneRenderer.RenderPng(scene), name), questions.Select(q => new ChatExchange(q.Question, q.Answer)).ToList(),
            Name: name, AnswerFocus: questions.Select(q => q.About?.Index).ToList());
    }

    /// <summary>
    /// A digit question names its object's colour (<c>the red circle</c>), so a colour question after it could be
    /// answered from the conversation instead of the picture, which the evaluation's single question never allows: the
    /// colour questions take the first of the turns the two types share, each type keeping its own order.
    /// </summary>
    static List<TaskQuestion> ColorsBeforeDigits(List<TaskQuestion> questions)
    {
        var turns = Enumerable.Range(0, questions.Count).Where(k => questions[k].Type is QuestionType.Color or QuestionType.Digit).ToList();
        var refilled = turns.Select(k => questions[k]).OrderBy(q => q.Type == QuestionType.Digit).ToList();
        for (int k = 0; k < turns.Count; k++) questions[turns[k]] = refilled[k];
        return questions;
    }

    /// <summary>
    /// The attributes <see cref="VisionSample"/> labels per cell: present (2 classes), shape (4), colour (6), digit (10)
    /// and the cell itself (4: the token keeps where it is, which every question naming a position needs).
    /// </summary>
    public static IReadOnlyList<int> TokenLabelClasses { get; } = [2, ShapeKinds.All.Count, ShapeColor.All.Count, 10, Cell.All.Count];

    /// <summary>The names of the attributes of <see cref="TokenLabelClasses"/>, in the same order.</summary>
    public static IReadOnlyList<string> TokenLabelNames { get; } = ["present", "shape", "colour", "digit", "cell"];

    static readonly List<ShapeColor> Colors = [.. ShapeColor.All];

    /// <summary>
    /// Sample <paramref name="index"/> of the stream for <see cref="TrainingStage.Vision"/>: a fresh scene whose four
    /// image tokens (one per cell, in reading order, as a 2×2 CLIP grid makes them) are labelled with what their cell
    /// holds and with the cell (<see cref="TokenLabelClasses"/>; shape, colour and digit are not labelled for an empty
    /// cell), and each occupied cell's token has its digit's box as mining focus (<see cref="TrainingSample.MiningFocus"/>).
    /// </summary>
    public TrainingSample VisionSample(long index)
    {
        var random = new Random(Mix(~Seed, index));
        var name = $"detail-shapes vision seed {Seed} sample {index}";
        var scene = new SceneSampler(random).Next();
        const int none = LabelledConversation.IgnoreIndex;
        var labels = Cell.All.Select((cell, k) => scene.At(cell) is { } o
            ? new[] { 1, (int)o.Shape, Colors.IndexOf(o.Color), o.Digit, k }
            : new[] { 0, none, none, none, k }).ToList();
        var focus = Cell.All.Select(cell => scene.At(cell) is { } o ? DigitBox(o) : (FocusBox?)null).ToList();
        return new TrainingSample(ImageInput.FromBytes(SceneRenderer.RenderPng(scene), name), [], Name: name, TokenLabels: labels, MiningFocus: focus);
    }

    /// <summary>The pixels of an object's digit box (where only the HR view can read the digit).</summary>
    static FocusBox DigitBox(SceneObject obj)
    {
        var (x, y) = SceneRenderer.DigitOrigin(obj);
        const double side = SceneRenderer.Size;
        return new FocusBox(x / side, y / side, SevenSegment.Width / side, SevenSegment.Height / side);
    }

    /// <summary>Side of the crops of <see cref="HrCropSample"/>, in HR pixels (a multiple of the ConvNeXt's stride 32).</summary>
    public const int CropSize = 64;

    /// <summary>The attribute <see cref="HrCropSample"/> labels: the digit (10 classes).</summary>
    public static IReadOnlyList<int> CropLabelClasses { get; } = [10];

    /// <summary>
    /// Sample <paramref name="index"/> of the stream for <see cref="TrainingStage.HrCrops"/>: a <see cref="CropSize"/>²
    /// crop of a fresh scene around one object's digit (the digit's centre up to 12 px off the crop's centre, so the
    /// digit is always whole), labelled with the digit.
    /// </summary>
    public TrainingSample HrCropSample(long index) => HrCrop(index, withFocus: false);

    /// <summary>
    /// <see cref="HrCropSample"/> with the digit's box as <see cref="TrainingSample.MiningFocus"/>: the HR tower then learns
    /// the digit as patch info mining reads it, through an attention over the crop's map pulled onto the box.
    /// </summary>
    public TrainingSample HrCropSampleWithFocus(long index) => HrCrop(index, withFocus: true);

    TrainingSample HrCrop(long index, bool withFocus)
    {
        var random = new Random(Mix(Seed ^ 0x5A5A5A5A, index));
        var name = $"detail-shapes crop seed {Seed} sample {index}";
        var scene = new SceneSampler(random).Next();
        var obj = scene.Objects[random.Next(scene.Objects.Count)];
        var (x, y) = SceneRenderer.DigitOrigin(obj);
        int left = Math.Clamp(x + SevenSegment.Width / 2 - CropSize / 2 + random.Next(-12, 13), 0, SceneRenderer.Size - CropSize);
        int top = Math.Clamp(y + SevenSegment.Height / 2 - CropSize / 2 + random.Next(-12, 13), 0, SceneRenderer.Size - CropSize);
        using var picture = SceneRenderer.Render(scene);
        using var crop = picture.Clone(c => c.Crop(new Rectangle(left, top, CropSize, CropSize)));
        using var png = new MemoryStream();
        crop.SaveAsPng(png);
        const double side = CropSize;
        var digit = new FocusBox((x - left) / side, (y - top) / side, SevenSegment.Width / side, SevenSegment.Height / side);
        return new TrainingSample(ImageInput.FromBytes(png.ToArray(), name), [], Name: name, TokenLabels: [[obj.Digit]], MiningFocus: withFocus ? [digit] : null);
    }

    /// <summary>
    /// Texts that hold every word the task and the template use (system prompt, roles, questions, answers, draw
    /// requests): the corpus of a word-level tokenizer for the task.
    /// </summary>
    public static IEnumerable<string> TokenizerCorpus(ConversationTemplate template)
    {
        var random = new Random(0);
        var sampler = new SceneSampler(random);
        var texts = new List<string>();
        for (int i = 0; i < 400; i++)
        {
            var scene = sampler.Next();
            var exchanges = QuestionWriter.Questions(scene).Select(q => new ChatExchange(q.Question, q.Answer)).ToList();
            texts.Add(template.BuildPrompt([exchanges[0] with { Images = 1 }, .. exchanges.Skip(1)]));
            var draw = QuestionWriter.Draw(random);
            texts.Add(template.BuildPrompt([new ChatExchange(draw.Question, draw.Answer)], generateImage: true));
        }
        return texts;
    }

    // SplitMix64 of (seed, index): neighbouring indices get unrelated generators.
    static int Mix(int seed, long index)
    {
        ulong z = unchecked((ulong)seed * 0x9E3779B97F4A7C15UL + (ulong)index + 0x632BE59BD9B4E5CCUL);
        z = unchecked((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL);
        z = unchecked((z ^ (z >> 27)) * 0x94D049BB133111EBUL);
        return (int)((z ^ (z >> 31)) & 0x7FFFFFFF);
    }
}
