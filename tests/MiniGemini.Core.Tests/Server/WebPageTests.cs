using System.Net.Http.Json;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Mvc.Testing;
using Microsoft.Extensions.DependencyInjection;
using MiniGemini.Tests.Cli;
using OpenQA.Selenium;
using OpenQA.Selenium.Chrome;
using OpenQA.Selenium.Support.UI;
using Xunit;
using Xunit.Abstractions;

namespace MiniGemini.Tests.Server;

/// <summary>The server's web page in headless Chromium (installed by <c>scripts/setup.sh --browser</c>), against the real server on Kestrel.</summary>
public sealed class WebPageTests(ITestOutputHelper output)
{
    const string Question = "What digit is at the top left?";
    const string Chromium = "/usr/bin/chromium", ChromeDriver = "/usr/bin/chromedriver";
    static string ExamplePicture => Path.Combine(Path.GetDirectoryName(BundledModelTests.ModelFolder)!, "example.png");

    [Fact]
    public async Task The_page_streams_the_answer_about_an_uploaded_picture_that_the_API_gives()
    {
        Assert.True(File.Exists(Chromium) && File.Exists(ChromeDriver),
            $"{Chromium} and {ChromeDriver} are needed: run scripts/setup.sh --browser (scripts/test.sh does).");
        using var factory = new WebApplicationFactory<Program>();
        factory.UseKestrel(0);
        factory.StartServer();
        var address = factory.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();

        using var http = new HttpClient { BaseAddress = new Uri(address) };
        var request = new JsonObject
        {
            ["messages"] = new JsonArray(new JsonObject
            {
                ["role"] = "user",
                ["content"] = new JsonArray(
                    new JsonObject { ["type"] = "image_url", ["image_url"] = new JsonObject { ["url"] = "data:image/png;base64," + Convert.ToBase64String(await File.ReadAllBytesAsync(ExamplePicture)) } },
                    new JsonObject { ["type"] = "text", ["text"] = Question }),
            }),
        };
        var api = JsonNode.Parse(await (await http.PostAsJsonAsync("/v1/chat/completions", request)).Content.ReadAsStringAsync())!;
        var expected = (string)api["choices"]![0]!["message"]!["content"]!;

        var options = new ChromeOptions { BinaryLocation = Chromium };
        options.AddArguments("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1000,1000");
        using var service = ChromeDriverService.CreateDefaultService(Path.GetDirectoryName(ChromeDriver)!, Path.GetFileName(ChromeDriver));
        using var driver = new ChromeDriver(service, options, TimeSpan.FromSeconds(120));
        var wait = new WebDriverWait(driver, TimeSpan.FromSeconds(60));
        driver.Navigate().GoToUrl(address);
        wait.Until(d => d.FindElement(By.Id("model")).Text == "detail-shapes-mgm");

        driver.FindElement(By.Id("file")).SendKeys(ExamplePicture);
        wait.Until(d => d.FindElement(By.Id("preview")).Displayed);
        driver.FindElement(By.Id("question")).SendKeys(Question);
        driver.FindElement(By.Id("send")).Click();
        var answer = wait.Until(d => d.FindElements(By.CssSelector("#answer-0.done")).FirstOrDefault());

        var screenshot = Path.Combine(AppContext.BaseDirectory, "artifacts", "web-page.png");
        Directory.CreateDirectory(Path.GetDirectoryName(screenshot)!);
        driver.GetScreenshot().SaveAsFile(screenshot);
        output.WriteLine($"screenshot: {screenshot}");
        Assert.False(driver.FindElement(By.Id("error")).Displayed, driver.FindElement(By.Id("error")).Text);
        Assert.Equal(expected, answer!.Text.Trim());
        Assert.Contains(Question, driver.FindElement(By.CssSelector(".turn.user")).Text);
    }
}
