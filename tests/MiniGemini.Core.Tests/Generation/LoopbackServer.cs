using System.Net;
using System.Net.Sockets;
using System.Text;

namespace MiniGemini.Tests.Generation;

/// <summary>A real HTTP server on 127.0.0.1 for tests; each request is answered by the handler.</summary>
public sealed class LoopbackServer : IAsyncDisposable
{
    readonly HttpListener _listener = new();
    readonly Func<HttpListenerRequest, string, Task<(int Status, string Body, Dictionary<string, string>? Headers)>> _handler;
    readonly CancellationTokenSource _stop = new();
    readonly Task _loop;
    readonly List<string> _bodies = [];

    public LoopbackServer(Func<HttpListenerRequest, string, Task<(int Status, string Body, Dictionary<string, string>? Headers)>> handler)
    {
        _handler = handler;
        int port = FreePort();
        BaseAddress = new Uri($"http://127.0.0.1:{port}/");
        _listener.Prefixes.Add(BaseAddress.ToString());
        _listener.Start();
        _loop = Task.Run(LoopAsync);
    }

    public Uri BaseAddress { get; }

    public IReadOnlyList<string> RequestBodies { get { lock (_bodies) return _bodies.ToList(); } }

    static int FreePort()
    {
        var probe = new TcpListener(IPAddress.Loopback, 0);
        probe.Start();
        int port = ((IPEndPoint)probe.LocalEndpoint).Port;
        probe.Stop();
        return port;
    }

    async Task LoopAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            HttpListenerContext context;
            try
            {
                context = await _listener.GetContextAsync().WaitAsync(_stop.Token);
            }
            catch (Exception) when (_stop.IsCancellationRequested || !_listener.IsListening)
            {
                return;
            }
            _ = Task.Run(async () =>
            {
                try
                {
                    string body;
                    using (var reader = new StreamReader(context.Request.InputStream, Encoding.UTF8))
                        body = await reader.ReadToEndAsync();
                    lock (_bodies) _bodies.Add(body);
                    var (status, answer, headers) = await _handler(context.Request, body);
                    context.Response.StatusCode = status;
                    foreach (var (k, v) in headers ?? []) context.Response.Headers[k] = v;
                    var bytes = Encoding.UTF8.GetBytes(answer);
                    context.Response.ContentType = "application/json";
                    await context.Response.OutputStream.WriteAsync(bytes);
                    context.Response.Close();
                }
                catch (Exception)
                {
                    try { context.Response.Abort(); } catch (Exception) { /* client went away */ }
                }
            });
        }
    }

    public async ValueTask DisposeAsync()
    {
        _stop.Cancel();
        _listener.Stop();
        try { await _loop; } catch (Exception) { /* stopped */ }
        _listener.Close();
        _stop.Dispose();
    }
}
