namespace MiniGemini.Training.DetailShapes;

/// <summary>An evaluation file (JSON Lines) that cannot be read: names the file and the 1-based line at fault.</summary>
public sealed class EvaluationFileException : IOException
{
    /// <summary>A problem on one line of a file.</summary>
    public EvaluationFileException(string path, int line, string problem, Exception? innerException = null)
        : base($"{path}, line {line}: {problem}", innerException)
    {
        Path = path;
        Line = line;
        Problem = problem;
    }

    /// <summary>The file (full path).</summary>
    public string Path { get; }

    /// <summary>The line, counted from 1.</summary>
    public int Line { get; }

    /// <summary>What is wrong, without the file and line.</summary>
    public string Problem { get; }
}
