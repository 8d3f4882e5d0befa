using System.Globalization;

namespace MiniGemini.Cli;

/// <summary>
/// The training loss curve as a PNG: every step, and a moving average over up to 50 steps, on a logarithmic loss axis
/// (the slow part after the first hundred steps, where the picture starts to matter, stays visible).
/// </summary>
static class LossPlot
{
    static readonly double[] Ticks = [0.01, 0.02, 0.03, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.8, 1, 1.5, 2, 3, 4, 6, 8, 10, 15, 20];

    public static void Write(string path, IReadOnlyList<double> losses, string title)
    {
        var plot = new ScottPlot.Plot();
        // Log scale by hand (ScottPlot plots what it is given): log10 of each loss, ticks labelled with the loss itself.
        var logs = losses.Select(l => Math.Log10(Math.Max(l, 1e-6))).ToArray();
        var steps = Enumerable.Range(1, losses.Count).Select(i => (double)i).ToArray();
        var raw = plot.Add.Scatter(steps, logs);
        raw.LegendText = "loss per step";
        raw.MarkerSize = 0;
        raw.LineWidth = 1;
        raw.Color = ScottPlot.Colors.LightBlue;

        int window = Math.Max(1, Math.Min(50, losses.Count / 10));
        var averageSteps = steps.Skip(window - 1).ToArray();
        var average = averageSteps.Select(s => Math.Log10(Math.Max(losses.Skip((int)s - window).Take(window).Average(), 1e-6))).ToArray();
        var smooth = plot.Add.Scatter(averageSteps, average);
        smooth.LegendText = $"moving average ({window} steps)";
        smooth.MarkerSize = 0;
        smooth.LineWidth = 2;
        smooth.Color = ScottPlot.Colors.Navy;

        double low = logs.Min(), high = logs.Max();
        var ticks = new ScottPlot.TickGenerators.NumericManual();
        foreach (var t in Ticks.Where(t => Math.Log10(t) >= low - 0.05 && Math.Log10(t) <= high + 0.05))
            ticks.AddMajor(Math.Log10(t), t.ToString("0.##", CultureInfo.InvariantCulture));
        plot.Axes.Left.TickGenerator = ticks;
        plot.Axes.SetLimitsY(low - 0.03, high + 0.03);
        plot.Title(title);
        plot.XLabel("step");
        plot.YLabel("masked cross-entropy (log scale)");
        plot.ShowLegend(ScottPlot.Alignment.UpperRight);
        plot.SavePng(path, 900, 500);
    }
}
