using MiniGemini.Text;

namespace MiniGemini.Training;

/// <summary>
/// One training conversation: an optional image (placed before the first user message, as MGM's data has it) and
/// the exchanges, every one with its answer. Only the answers are learned; system prompt, user turns and image
/// positions are masked from the loss.
/// </summary>
/// <param name="Image">The picture the conversation is about, or null for a text-only sample (e.g. a draw request).</param>
/// <param name="Exchanges">User messages and the answers to learn, in order.</param>
/// <param name="GenerateImage">Whether the last user message is an image-generation request (MGM's <c>&lt;GEN&gt;</c> suffix).</param>
/// <param name="Name">A name for error messages (e.g. the index of the sample in its stream).</param>
/// <param name="TokenLabels">
/// For <see cref="TrainingObjective.TokenLabels"/>: per image token (in the model's token order), one class index per
/// attribute of <see cref="TrainingOptions.TokenLabelClasses"/>, or <see cref="LabelledConversation.IgnoreIndex"/> where
/// the attribute does not apply. Conversations are then not needed.
/// </param>
/// <param name="MiningFocus">
/// For <see cref="TrainingObjective.TokenLabels"/> with a model that has patch info mining: per image token, the box
/// of HR pixels its mining attention should fall on (e.g. the small detail only the HR view shows), or null for a token
/// without one; <see cref="TrainingOptions.MiningFocusWeight"/> weighs the term. Ignored by models without mining.
/// </param>
/// <param name="AnswerFocus">
/// Per exchange, the image token (in the model's token order) the answer is about, e.g. the token of the object a
/// question names by its looks, or null for an answer about no single token; with
/// <see cref="TrainingOptions.AnswerFocusWeight"/> above 0, one attention head of the LLM is pulled onto that token at
/// the position that predicts the answer's first token. Needs an image.
/// </param>
public sealed record TrainingSample(ImageInput? Image, IReadOnlyList<ChatExchange> Exchanges, bool GenerateImage = false, string Name = "sample",
    IReadOnlyList<IReadOnlyList<int>>? TokenLabels = null, IReadOnlyList<FocusBox?>? MiningFocus = null, IReadOnlyList<int?>? AnswerFocus = null);

/// <summary>
/// A box of a square picture in fractions of its side (so that it holds at any HR size): columns
/// <c>[Left, Left + Width)</c> and rows <c>[Top, Top + Height)</c>, e.g. pixels 20–27 of a 448-pixel picture are
/// <c>Left = 20 / 448.0, Width = 8 / 448.0</c>.
/// </summary>
public readonly record struct FocusBox(double Left, double Top, double Width, double Height);
