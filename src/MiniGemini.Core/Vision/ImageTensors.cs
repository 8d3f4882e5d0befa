using static TorchSharp.torch;

namespace MiniGemini.Vision;

/// <summary>
/// A preprocessed batch: MGM's two image inputs, float32 on the CPU. The caller owns both tensors; disposing this
/// object disposes them.
/// </summary>
internal sealed class ImageTensors : IDisposable
{
    internal ImageTensors(Tensor hr, Tensor lr, int viewsPerImage)
    {
        Hr = hr;
        Lr = lr;
        ViewsPerImage = viewsPerImage;
    }

    /// <summary>HR input of the ConvNeXt tower, normalized: <c>[B, 3, S, S]</c> (MGM's <c>images_aux</c>).</summary>
    public Tensor Hr { get; }

    /// <summary>
    /// LR views for the CLIP tower, normalized: <c>[B·V, 3, s, s]</c> in the order MGM feeds CLIP.
    /// <list type="bullet">
    /// <item>Grid 1: the B images.</item>
    /// <item>Grid g &gt; 1: first the g² crops of image 0, row-major, then those of image 1, and so on. With the global view, the B
    /// global views follow the B·g² crops.</item>
    /// </list>
    /// For one image this is <c>[crop(0,0), crop(0,1), …, global]</c>. Patch info mining takes the crops from the
    /// front and the B globals from the end, and puts each image's global tokens first in its output.
    /// </summary>
    public Tensor Lr { get; }

    /// <summary>Number of images B.</summary>
    public int BatchSize => (int)Hr.shape[0];

    /// <summary>LR views per image V: 1, or g² crops plus the global view if there is one.</summary>
    public int ViewsPerImage { get; }

    /// <summary>Disposes both tensors.</summary>
    public void Dispose()
    {
        Hr.Dispose();
        Lr.Dispose();
    }
}
