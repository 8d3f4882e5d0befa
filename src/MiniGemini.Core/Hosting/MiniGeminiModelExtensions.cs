using Microsoft.Extensions.AI;

namespace MiniGemini.Hosting;

/// <summary>Microsoft.Extensions.AI conventions on <see cref="MiniGeminiModel"/>.</summary>
public static class MiniGeminiModelExtensions
{
    /// <summary>
    /// The model as an <see cref="IChatClient"/> (a <see cref="MiniGeminiChatClient"/>), as other providers' <c>AsIChatClient()</c>.
    /// The client does not own the model: dispose the model yourself.
    /// </summary>
    public static IChatClient AsIChatClient(this MiniGeminiModel model) => new MiniGeminiChatClient(model);
}
