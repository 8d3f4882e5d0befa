using MiniGemini.Checkpoints;
using MiniGemini.Tests.Pipeline;
using Xunit;

namespace MiniGemini.Tests.Checkpoints;

public sealed class MappedPagesTests
{
    /// <summary>
    /// Only the mappings of safetensors files directly in the folder count: not anonymous memory, another file, a file
    /// in a subfolder or one deleted since; a path may hold spaces.
    /// </summary>
    [Fact]
    public void Sums_the_resident_and_2_MiB_mapped_bytes_of_the_folders_safetensors_files()
    {
        const string smaps = """
            7f0000000000-7f0040000000 r--p 00000000 fd:01 1234                       /models/my model/model-00001-of-00002.safetensors
            Size:            1048576 kB
            Rss:              900000 kB
            FilePmdMapped:    880640 kB
            VmFlags: rd mr mw me
            7f0040000000-7f0050000000 r--p 00000000 fd:01 1235                       /models/my model/model-00002-of-00002.safetensors
            Rss:              262144 kB
            FilePmdMapped:         0 kB
            7f0050000000-7f0060000000 rw-p 00000000 00:00 0
            Rss:              262144 kB
            AnonHugePages:    262144 kB
            7f0060000000-7f0061000000 r--p 00000000 fd:01 1236                       /models/my model/tokenizer.model
            Rss:                4096 kB
            FilePmdMapped:      2048 kB
            7f0061000000-7f0062000000 r--p 00000000 fd:01 1237                       /models/my model/towers/clip.safetensors
            Rss:               16384 kB
            FilePmdMapped:     16384 kB
            7f0062000000-7f0063000000 r--p 00000000 fd:01 1238                       /models/my model/old.safetensors (deleted)
            Rss:               16384 kB
            FilePmdMapped:     16384 kB
            """;
        var pages = MappedPages.Parse(new StringReader(smaps), "/models/my model/");
        Assert.Equal((900000L + 262144) * 1024, pages.Resident);
        Assert.Equal(880640L * 1024, pages.InHugePages);
        Assert.Equal((19360L + 262144) * 1024, pages.InSmallPages);
    }

    /// <summary>A model whose weights are mapped shows them in this process's mappings of its folder.</summary>
    [Fact]
    public void A_mapped_model_is_found_in_the_process_mappings()
    {
        if (!OperatingSystem.IsLinux()) return;
        using var model = MiniGeminiBuilder.FromPretrained(TinyModelFixture.ModelFolder).WithMappedWeights().Build();
        var pages = MappedPages.Of(TinyModelFixture.ModelFolder);
        Assert.NotNull(pages);
        Assert.True(pages.Value.Resident > 0, "no resident mapping of the model's safetensors");
        Assert.InRange(pages.Value.InHugePages, 0, pages.Value.Resident);
    }
}
