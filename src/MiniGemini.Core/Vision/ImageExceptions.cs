namespace MiniGemini.Vision;

/// <summary>
/// An image input could not be used: it is empty, truncated, not an image, in a format no decoder reads, or its
/// content is corrupt. The message names the input (a file path or the name the caller gave).
/// </summary>
public class InvalidImageException : Exception
{
    /// <summary>Creates the exception.</summary>
    /// <param name="message">What is wrong; starts with the input's name.</param>
    /// <param name="imageName">The file path or caller-given name of the input.</param>
    /// <param name="inner">The decoder's error, if any.</param>
    public InvalidImageException(string message, string imageName, Exception? inner = null)
        : base(message, inner) => ImageName = imageName;

    /// <summary>The file path or caller-given name of the input at fault.</summary>
    public string ImageName { get; }
}

/// <summary>
/// An image's header declares more pixels than <see cref="ImagePreprocessOptions.MaxPixels"/> allows. It is thrown
/// after reading only the header, before any pixel data is decoded or allocated.
/// </summary>
public sealed class ImageTooLargeException : InvalidImageException
{
    /// <summary>Creates the exception.</summary>
    /// <param name="imageName">The file path or caller-given name of the input.</param>
    /// <param name="width">Width declared by the header.</param>
    /// <param name="height">Height declared by the header.</param>
    /// <param name="maxPixels">The budget it exceeds.</param>
    public ImageTooLargeException(string imageName, int width, int height, long maxPixels)
        : base($"{imageName}: the image is {width}×{height} = {(long)width * height:N0} pixels, over the budget of " +
               $"{maxPixels:N0} pixels (ImagePreprocessOptions.MaxPixels); it was not decoded.", imageName)
    {
        Width = width;
        Height = height;
        MaxPixels = maxPixels;
    }

    /// <summary>Width declared by the header.</summary>
    public int Width { get; }

    /// <summary>Height declared by the header.</summary>
    public int Height { get; }

    /// <summary>The pixel budget in force.</summary>
    public long MaxPixels { get; }
}
