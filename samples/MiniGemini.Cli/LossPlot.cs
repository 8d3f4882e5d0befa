namespace MiniGemini.Cli;

/// <summary>The training loss curve as a PNG: every step, and a moving average over 50 steps.</summary>
static class LossPlot
{
    public static void Write(string path, IReadOnlyList<double> losses, string title)
    {
        var plot = new ScottPlot.Plot();
        var steps = Enumerable.Range(1, losses.Count).Select(i => (double)i).ToArray();
        var raw = plot.Add.Scatter(steps, losses.ToArray());
        raw.LegendText = "loss per step";
        raw.MarkerSize = 0;
        raw.LineWidth = 1;
        raw.Color = ScottPlot.Colors.LightBlue;
        int window = Math.Max(1, Math.Min(50, losses.Count / 10));
        var average = losses.Select((_, i) => losses.Skip(Math.Max(0, i - window + 1)).Take(Math.Min(window, i + 1)).Average()).ToArray();
        var smooth = plot.Add.Scatter(steps, average);
        smooth.LegendText = $"moving average ({window} steps)";
        smooth.MarkerSize = 0;
        smooth.LineWidth = 2;
        smooth.Color = ScottPlot.Colors.Navy;
        plot.Axes.SetLimitsY(0, Math.Max(0.1, losses.Take(Math.Max(1, losses.Count / 20)).Max()) * 1.05);
        plot.Title(title);
        plot.XLabel("step");
        plot.YLabel("masked cross-entropy");
        plot.ShowLegend(ScottPlot.Alignment.UpperRight);
        plot.SavePng(path, 900, 500);
    }
}
