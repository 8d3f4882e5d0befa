using MiniGemini.Training.DetailShapes;
using SixLabors.ImageSharp;
using SixLabors.ImageSharp.PixelFormats;
using Xunit;

namespace MiniGemini.Tests.Training;

/// <summary>The Detail Shapes pictures, pixel by pixel, against values worked out by hand from the spec.</summary>
public sealed class DetailShapesRendererTests
{
    static readonly Rgb24 Grey = new(240, 240, 240);

    static Rgb24 PixelOf(Scene scene, int x, int y)
    {
        using var image = SceneRenderer.Render(scene);
        return image[x, y];
    }

    static Image<Rgb24> RenderOne(SceneObject obj, Rgb24? background = null) =>
        SceneRenderer.Render(new Scene(background ?? Grey, [obj]));

    [Fact]
    public void Circle_edge_follows_the_pixel_centre_rule()
    {
        // s = 110 at (112, 112): r = 55. Pixel (112, 57) is tested at (112.5, 57.5): 0.25 + 54.5² = 2970.5 ≤ 3025;
        // pixel (112, 56) at (112.5, 56.5): 0.25 + 55.5² = 3080.5 > 3025.
        var circle = SceneObject.InCell(Cell.TopLeft, ShapeKind.Circle, ShapeColor.Red, 4, 110);
        Assert.Equal((112, 112), (circle.CenterX, circle.CenterY));
        using var image = RenderOne(circle);
        var red = ShapeColor.Red.Fill;
        Assert.Equal(red, image[112, 57]);
        Assert.Equal(Grey, image[112, 56]);
        Assert.Equal(red, image[57, 112]);   // (57.5 − 112)² = 54.5²
        Assert.Equal(Grey, image[56, 112]);
        Assert.Equal(red, image[112, 166]);  // 166.5 − 112 = 54.5
        Assert.Equal(Grey, image[112, 167]); // 55.5
        Assert.Equal(red, image[73, 73]);    // 2 · 38.5² = 2964.5 ≤ 3025
        Assert.Equal(Grey, image[72, 72]);   // 2 · 39.5² = 3120.5 > 3025
    }

    [Fact]
    public void Square_of_odd_size_spans_its_half_pixel_bounds()
    {
        // s = 111: r = 55.5, so |x + 0.5 − 112| ≤ 55.5 holds for x = 56…167.
        var square = SceneObject.InCell(Cell.TopLeft, ShapeKind.Square, ShapeColor.Blue, 1, 111);
        using var image = RenderOne(square);
        var blue = ShapeColor.Blue.Fill;
        Assert.Equal(Grey, image[55, 80]);
        Assert.Equal(blue, image[56, 80]);
        Assert.Equal(blue, image[167, 80]);
        Assert.Equal(Grey, image[168, 80]);
        Assert.Equal(blue, image[80, 56]);
        Assert.Equal(Grey, image[80, 55]);
        Assert.Equal(blue, image[56, 167]);
        Assert.Equal(Grey, image[56, 168]);
    }

    [Fact]
    public void Triangle_points_up_with_its_apex_on_the_first_row_whose_half_width_reaches_a_pixel_centre()
    {
        // s = 120 at (112, 112): r = 60, apex at py = 52. Row 52 (py 52.5) allows |px − 112| ≤ 0.25: no pixel centre;
        // row 53 (py 53.5) allows 0.75: x = 111 and 112. Row 171 (py 171.5) allows 59.75: x = 52…171; row 172 is below.
        var triangle = SceneObject.InCell(Cell.TopLeft, ShapeKind.Triangle, ShapeColor.Green, 5, 120);
        using var image = RenderOne(triangle);
        var green = ShapeColor.Green.Fill;
        for (int x = 100; x < 125; x++) Assert.Equal(Grey, image[x, 52]);
        Assert.Equal(Grey, image[110, 53]);
        Assert.Equal(green, image[111, 53]);
        Assert.Equal(green, image[112, 53]);
        Assert.Equal(Grey, image[113, 53]);
        Assert.Equal(Grey, image[51, 171]);
        Assert.Equal(green, image[52, 171]);
        Assert.Equal(green, image[171, 171]);
        Assert.Equal(Grey, image[172, 171]);
        Assert.Equal(Grey, image[112, 172]);
    }

    [Fact]
    public void Diamond_includes_pixels_exactly_on_its_edge()
    {
        // s = 120 at (336, 112): r = 60. Pixel (276, 112): |276.5 − 336| + |112.5 − 112| = 59.5 + 0.5 = 60 ≤ 60.
        var diamond = SceneObject.InCell(Cell.TopRight, ShapeKind.Diamond, ShapeColor.Purple, 2, 120);
        Assert.Equal((336, 112), (diamond.CenterX, diamond.CenterY));
        using var image = RenderOne(diamond);
        var purple = ShapeColor.Purple.Fill;
        Assert.Equal(purple, image[276, 112]);
        Assert.Equal(Grey, image[275, 112]);
        Assert.Equal(purple, image[395, 112]);
        Assert.Equal(Grey, image[396, 112]);
        Assert.Equal(purple, image[336, 52]);  // 0.5 + 59.5
        Assert.Equal(Grey, image[336, 51]);    // 0.5 + 60.5
        Assert.Equal(purple, image[306, 82]);  // 29.5 + 29.5 = 59
        Assert.Equal(Grey, image[305, 81]);    // 30.5 + 30.5 = 61
    }

    [Fact]
    public void Digit_box_sits_on_the_centroid_and_the_triangle_centroid_rounds_half_away_from_zero()
    {
        var circle = SceneObject.InCell(Cell.BottomRight, ShapeKind.Circle, ShapeColor.Red, 8, 131, jitterX: -3, jitterY: 7);
        Assert.Equal((336 - 3 - 4, 336 + 7 - 7), SceneRenderer.DigitOrigin(circle));
        // s = 110: gy = 112 + 18.33… → 130, box top 123.
        var t110 = SceneObject.InCell(Cell.TopLeft, ShapeKind.Triangle, ShapeColor.Yellow, 7, 110);
        Assert.Equal((108, 123), SceneRenderer.DigitOrigin(t110));
        // s = 112: gy = 130.67 → 131.
        Assert.Equal((108, 124), SceneRenderer.DigitOrigin(t110 with { Size = 112 }));
        // s = 111: gy = 112 + 18.5 = 130.5 → 131 (half away from zero; to-even would give 130), box top 124.
        var t111 = t110 with { Size = 111 };
        Assert.Equal((108, 124), SceneRenderer.DigitOrigin(t111));
        using var image = RenderOne(t111);
        var yellow = ShapeColor.Yellow.Fill;
        // Digit 7 = abc: segment a fills rows 124–125, columns 108–115; row 123 is still the shape.
        for (int x = 108; x <= 115; x++)
        {
            Assert.Equal(ShapeColor.Black, image[x, 124]);
            Assert.Equal(ShapeColor.Black, image[x, 125]);
            Assert.Equal(yellow, image[x, 123]);
        }
        Assert.Equal(yellow, image[108, 126]); // f is not part of 7
        Assert.Equal(ShapeColor.Black, image[114, 137]); // c: column 6, row 13
        Assert.Equal(yellow, image[114, 138]);
    }

    [Fact]
    public void Digit_four_inks_segments_b_c_f_g_only()
    {
        var circle = SceneObject.InCell(Cell.TopLeft, ShapeKind.Circle, ShapeColor.Blue, 4, 140);
        Assert.Equal((108, 105), SceneRenderer.DigitOrigin(circle));
        using var image = RenderOne(circle);
        var (white, blue) = (ShapeColor.White, ShapeColor.Blue.Fill);
        Assert.Equal(white, image[114, 105]); // b: column 6, row 0
        Assert.Equal(white, image[108, 105]); // f: column 0, row 0
        Assert.Equal(blue, image[111, 105]);  // a is not part of 4: column 3, row 0
        Assert.Equal(white, image[111, 111]); // g: column 3, row 6
        Assert.Equal(white, image[115, 115]); // c: column 7, row 10
        Assert.Equal(blue, image[108, 115]);  // e: column 0, row 10
        Assert.Equal(blue, image[111, 118]);  // d: column 3, row 13
        Assert.Equal(blue, image[111, 104]);  // above the box
        Assert.Equal(blue, image[116, 110]);  // right of the box
        Assert.Equal("bcfg", SevenSegment.SegmentsOf(4));
        Assert.True(SevenSegment.IsLit(4, 6, 0));
        Assert.False(SevenSegment.IsLit(4, 3, 0));
    }

    [Theory]
    [InlineData("red", 220, 40, 40, 255)]
    [InlineData("green", 40, 170, 60, 0)]
    [InlineData("blue", 40, 80, 220, 255)]
    [InlineData("yellow", 235, 200, 40, 0)]
    [InlineData("purple", 150, 60, 190, 255)]
    [InlineData("orange", 245, 130, 30, 0)]
    public void Each_colour_fills_its_shape_and_inks_its_digit(string name, byte r, byte g, byte b, byte ink)
    {
        var color = ShapeColor.FromName(name);
        var square = SceneObject.InCell(Cell.BottomLeft, ShapeKind.Square, color, 8, 120);
        using var image = RenderOne(square);
        var (left, top) = SceneRenderer.DigitOrigin(square);
        Assert.Equal((108, 329), (left, top));
        Assert.Equal(new Rgb24(r, g, b), image[80, 300]);
        Assert.Equal(new Rgb24(ink, ink, ink), image[left, top]);
        Assert.Equal(new Rgb24(ink, ink, ink), image[left + 3, top + 6]); // g of 8
        Assert.Equal(new Rgb24(r, g, b), image[left + 3, top + 3]);       // the hole of 8
    }

    [Fact]
    public void Empty_areas_keep_the_background()
    {
        var background = new Rgb24(225, 225, 215);
        var scene = new Scene(background, [SceneObject.InCell(Cell.TopLeft, ShapeKind.Diamond, ShapeColor.Orange, 3, 160, 20, 20)]);
        using var image = SceneRenderer.Render(scene);
        Assert.Equal(448, image.Width);
        Assert.Equal(448, image.Height);
        Assert.Equal(background, image[0, 0]);
        Assert.Equal(background, image[336, 112]);
        Assert.Equal(background, image[336, 336]);
        Assert.Equal(background, image[447, 447]);
        Assert.Equal(background, PixelOf(new Scene(background, []), 224, 224));
    }

    [Fact]
    public void Rendering_equals_the_spec_formulas_pixel_for_pixel()
    {
        var sampler = new SceneSampler(11);
        var rgb = new byte[SceneRenderer.RgbByteCount];
        for (int n = 0; n < 40; n++)
        {
            var scene = sampler.Next();
            SceneRenderer.RenderInto(scene, rgb);
            var expected = Reference(scene);
            for (int i = 0; i < rgb.Length; i++)
                if (rgb[i] != expected[i])
                    Assert.Fail($"scene {n}: pixel ({i / 3 % 448}, {i / 3 / 448}) channel {i % 3} is {rgb[i]}, the spec gives {expected[i]}");
        }
    }

    [Fact]
    public void Objects_reaching_past_the_picture_are_clipped()
    {
        var obj = new SceneObject(Cell.TopLeft, ShapeKind.Circle, ShapeColor.Red, 5, 160, 2, 445);
        var scene = new Scene(Grey, [obj]);
        var rgb = new byte[SceneRenderer.RgbByteCount];
        SceneRenderer.RenderInto(scene, rgb);
        Assert.Equal(Reference(scene), rgb);
    }

    [Fact]
    public void Same_seed_gives_the_same_png_and_another_seed_another()
    {
        var a = new SceneSampler(42).Next();
        var b = new SceneSampler(42).Next();
        Assert.Equal(a, b);
        var png = SceneRenderer.RenderPng(a);
        Assert.Equal(png, SceneRenderer.RenderPng(b));
        Assert.Equal(0x89, png[0]); // PNG signature
        var other = Enumerable.Range(43, 5).Select(s => SceneRenderer.RenderPng(new SceneSampler(s).Next()));
        Assert.All(other, o => Assert.NotEqual(png, o));

        // The PNG holds exactly the rendered pixels.
        using var decoded = Image.Load<Rgb24>(png);
        using var rendered = SceneRenderer.Render(a);
        for (int y = 0; y < 448; y += 7)
            for (int x = 0; x < 448; x++)
                Assert.Equal(rendered[x, y], decoded[x, y]);
    }

    [Fact]
    public void Sampled_scenes_stay_in_range_and_in_their_cells()
    {
        var sampler = new SceneSampler(1);
        var sizes = new HashSet<int>();
        var jitters = new HashSet<int>();
        var backgrounds = new HashSet<Rgb24>();
        int objects = 0, scenes = 3000;
        for (int n = 0; n < scenes; n++)
        {
            var scene = sampler.Next();
            backgrounds.Add(scene.Background);
            Assert.InRange(scene.Objects.Count, 1, 4);
            Assert.Equal(scene.Objects.OrderBy(o => o.Cell.Index), scene.Objects);
            foreach (var o in scene.Objects)
            {
                objects++;
                Assert.InRange(o.Size, 110, 160);
                int jx = o.CenterX - (224 * o.Cell.X + 112), jy = o.CenterY - (224 * o.Cell.Y + 112);
                Assert.InRange(jx, -20, 20);
                Assert.InRange(jy, -20, 20);
                sizes.Add(o.Size);
                jitters.Add(jx);
                // The bounding box stays inside the object's own cell.
                Assert.InRange(o.CenterX - o.Size / 2.0, 224 * o.Cell.X, 224 * o.Cell.X + 224);
                Assert.InRange(o.CenterX + o.Size / 2.0, 224 * o.Cell.X, 224 * o.Cell.X + 224);
                Assert.InRange(o.CenterY - o.Size / 2.0, 224 * o.Cell.Y, 224 * o.Cell.Y + 224);
                Assert.InRange(o.CenterY + o.Size / 2.0, 224 * o.Cell.Y, 224 * o.Cell.Y + 224);
            }
        }
        Assert.Equal(51, sizes.Count);
        Assert.Equal(41, jitters.Count);
        Assert.Equal(3, backgrounds.Count);
        // 4 · 0.6 / (1 − 0.4⁴) ≈ 2.44 objects per scene.
        Assert.InRange(objects / (double)scenes, 2.40, 2.53);
    }

    /// <summary>The spec written out directly, in floating point (exact here: every value is a multiple of 1/4).</summary>
    static byte[] Reference(Scene scene)
    {
        var rgb = new byte[448 * 448 * 3];
        for (int y = 0; y < 448; y++)
            for (int x = 0; x < 448; x++)
            {
                var color = scene.Background;
                double px = x + 0.5, py = y + 0.5;
                foreach (var o in scene.Objects)
                {
                    double cx = o.CenterX, cy = o.CenterY, r = o.Size / 2.0;
                    bool inside = o.Shape switch
                    {
                        ShapeKind.Circle => (px - cx) * (px - cx) + (py - cy) * (py - cy) <= r * r,
                        ShapeKind.Square => Math.Abs(px - cx) <= r && Math.Abs(py - cy) <= r,
                        ShapeKind.Diamond => Math.Abs(px - cx) + Math.Abs(py - cy) <= r,
                        _ => cy - r <= py && py <= cy + r && Math.Abs(px - cx) <= (py - (cy - r)) / 2,
                    };
                    if (inside) color = o.Color.Fill;
                    double gy = o.Shape == ShapeKind.Triangle ? cy + o.Size / 6.0 : cy;
                    int left = (int)Math.Round(cx, MidpointRounding.AwayFromZero) - 4, top = (int)Math.Round(gy, MidpointRounding.AwayFromZero) - 7;
                    if (SevenSegment.IsLit(o.Digit, x - left, y - top)) color = o.Color.Ink;
                }
                int i = (y * 448 + x) * 3;
                (rgb[i], rgb[i + 1], rgb[i + 2]) = (color.R, color.G, color.B);
            }
        return rgb;
    }
}
