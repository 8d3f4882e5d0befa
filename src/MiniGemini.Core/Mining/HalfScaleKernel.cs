using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using TorchSharp;
using static TorchSharp.torch;

namespace MiniGemini.Mining;

/// <summary>
/// Bilinear downsampling by exactly 1/2 (align_corners = false) of float32 CPU maps. Output (i, j) samples input
/// position (2i + ½, 2j + ½), so all four weights are ½·½ and it is the mean of the 2×2 block, ((a + b) + (c + d)) / 4:
/// <c>F.interpolate(scale_factor=0.5, mode="bilinear")</c> up to the order of the float additions (bit-identical to
/// libtorch's CPU kernel on MGM-sized maps, within an ulp on others), at memory speed instead of that kernel's
/// scalar loop (the HD global view downsamples a 1.7 GB map).
/// </summary>
internal static unsafe class HalfScaleKernel
{
    public static bool Supports(Tensor map) =>
        map.device_type == DeviceType.CPU && map.dtype == ScalarType.Float32 && map.dim() == 4 && map.is_contiguous();

    /// <summary><c>[N, C, H, W]</c> → <c>[N, C, H/2, W/2]</c> (odd last rows and columns are ignored, as by the interpolation).</summary>
    public static Tensor Run(Tensor map)
    {
        long planes = map.shape[0] * map.shape[1], height = map.shape[2], width = map.shape[3];
        long outHeight = height / 2, outWidth = width / 2;
        var output = empty([map.shape[0], map.shape[1], outHeight, outWidth], ScalarType.Float32);
        float* input = Address(map), result = Address(output);
        Parallel.For(0L, planes, new ParallelOptions { MaxDegreeOfParallelism = Math.Max(1, get_num_threads()) }, plane =>
        {
            for (long y = 0; y < outHeight; y++)
                Row(input + (plane * height + 2 * y) * width, width, result + (plane * outHeight + y) * outWidth, outWidth);
        });
        return output;
    }

    static float* Address(Tensor t) => (float*)t.storage<float>().data_ptr() + t.storage_offset();

    /// <summary>One output row from the input rows at <paramref name="top"/> and top + width.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void Row(float* top, long width, float* output, long outWidth)
    {
        float* bottom = top + width;
        long x = 0;
        if (Vector256.IsHardwareAccelerated)
        {
            // Evens to the lower half, odds to the upper: lower + upper = the horizontal pair sums of 8 inputs.
            for (; x + 4 <= outWidth; x += 4)
            {
                var t = Vector256.Shuffle(Vector256.Load(top + 2 * x), Vector256.Create(0, 2, 4, 6, 1, 3, 5, 7));
                var b = Vector256.Shuffle(Vector256.Load(bottom + 2 * x), Vector256.Create(0, 2, 4, 6, 1, 3, 5, 7));
                var sum = (t.GetLower() + t.GetUpper()) + (b.GetLower() + b.GetUpper());
                (sum * 0.25f).Store(output + x);
            }
        }
        for (; x < outWidth; x++)
            output[x] = ((top[2 * x] + top[2 * x + 1]) + (bottom[2 * x] + bottom[2 * x + 1])) * 0.25f;
    }
}
