using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.IO;
using System.Net;
using System.Net.Http;
using System.Net.Http.Headers;
using System.Net.Sockets;
using System.Text;
using System.Text.RegularExpressions;
using System.Threading;
using System.Threading.Tasks;

namespace CloudAuth.Tests
{
    /// <summary>
    /// The CloudAuth .NET binding against the real library and the local stand-in server
    /// (STANDIN_URL, see tests/standin/PROTOCOL.md). Run: mono CloudAuth.Tests.exe [name-filter]
    /// </summary>
    public static partial class Tests
    {
        private const string ClientId = "demo-client";
        private const string Secret = "demo-secret";

        private static Standin standin;

        public static int Main(string[] args)
        {
            string url = Environment.GetEnvironmentVariable("STANDIN_URL");
            if (string.IsNullOrEmpty(url))
            {
                Console.Error.WriteLine("CloudAuth.Tests: set STANDIN_URL (run under tests/standin/with_server.sh)");
                return 2;
            }
            standin = new Standin(url);
            if (args.Length > 0 && args[0] == ExitProbe)
            {
                return ExitWithWorkInFlight();
            }
            Console.WriteLine("cloudauth " + Library.Version + ", stand-in at " + standin.Url);
            return Runner.Run(typeof(Tests), standin.Reset, args.Length > 0 ? args[0] : null);
        }

        // --- helpers ---------------------------------------------------------------------

        /// <summary>Options for a session against the stand-in, with overrides.</summary>
        private static Dictionary<string, string> Options(params string[] overrides)
        {
            Dictionary<string, string> options = new Dictionary<string, string>
            {
                { "client_id", ClientId },
                { "client_secret", Secret },
                { "token_url", standin.TokenUrl },
                { "base_url", standin.Url },
                { "proxy", "none" }, // loopback only, whatever the environment says
                { "timeout_ms", "10000" },
            };
            for (int i = 0; i < overrides.Length; i += 2)
            {
                options[overrides[i]] = overrides[i + 1];
            }
            return options;
        }

        private static Session NewSession(params string[] overrides)
        {
            return new Session(Options(overrides));
        }

        /// <summary>
        /// The failure a fresh session's first token request gives: exactly <typeparamref name="T"/>
        /// with the matching Code, a message, and no secret in it.
        /// </summary>
        private static T TokenFailure<T>(ResultCode code, params string[] overrides) where T : CloudAuthException
        {
            using (Session session = NewSession(overrides))
            {
                T e = Assert.Throws<T>(() => session.GetToken(), "GetToken");
                CheckError(e, code);
                return e;
            }
        }

        private static void CheckError(CloudAuthException e, ResultCode code)
        {
            Assert.Equal(code, e.Code, "Code");
            Assert.True(e.Message.Length > 0, "a message from cloudauth_last_error()");
            Assert.Lacks(Secret, e.ToString(), "the exception");
        }

        private static HttpClient AuthorizedClient(Session session)
        {
            return new HttpClient(new CloudAuthHandler(session, new HttpClientHandler { UseProxy = false }));
        }

        /// <summary>An authorized client whose requests all go through the stand-in as their HTTP proxy.</summary>
        private static HttpClient ThroughStandin(Session session)
        {
            HttpClientHandler inner = new HttpClientHandler { UseProxy = true, Proxy = new WebProxy(standin.Url) };
            return new HttpClient(new CloudAuthHandler(session, inner));
        }

        private static Dictionary<string, object> Json(string text)
        {
            return (Dictionary<string, object>)MiniJson.Parse(text);
        }

        private static int ClosedPort()
        {
            TcpListener listener = new TcpListener(IPAddress.Loopback, 0);
            listener.Start();
            int port = ((IPEndPoint)listener.LocalEndpoint).Port;
            listener.Stop();
            return port;
        }

        /// <summary>A stream that can be read once, front to back, like a network stream.</summary>
        private sealed class OneShotStream : Stream
        {
            private readonly MemoryStream inner;

            public OneShotStream(byte[] data)
            {
                inner = new MemoryStream(data, false);
            }

            public override bool CanRead { get { return true; } }
            public override bool CanSeek { get { return false; } }
            public override bool CanWrite { get { return false; } }
            public override long Length { get { throw new NotSupportedException(); } }
            public override long Position
            {
                get { throw new NotSupportedException(); }
                set { throw new NotSupportedException(); }
            }
            public override int Read(byte[] buffer, int offset, int count) { return inner.Read(buffer, offset, count); }
            public override void Flush() { }
            public override long Seek(long offset, SeekOrigin origin) { throw new NotSupportedException(); }
            public override void SetLength(long value) { throw new NotSupportedException(); }
            public override void Write(byte[] buffer, int offset, int count) { throw new NotSupportedException(); }
        }

        /// <summary>An inner handler that never touches the network: it records and answers 200.</summary>
        private sealed class RecordingHandler : HttpMessageHandler
        {
            public readonly List<HttpRequestMessage> Requests = new List<HttpRequestMessage>();

            protected override Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
            {
                lock (Requests)
                {
                    Requests.Add(request);
                }
                return Task.FromResult(new HttpResponseMessage(HttpStatusCode.OK));
            }
        }

        /// <summary>
        /// An inner handler that answers 401 to two requests carrying a stale token, one after
        /// the other: the second 401 is sent only once the first request's retry (with a new
        /// token) has arrived. Everything else gets 200. No network.
        /// </summary>
        private sealed class StaleTokenHandler : HttpMessageHandler
        {
            private readonly string stale;
            private readonly TaskCompletionSource<bool> bothArrived = new TaskCompletionSource<bool>(TaskCreationOptions.RunContinuationsAsynchronously);
            private readonly TaskCompletionSource<bool> firstRetried = new TaskCompletionSource<bool>(TaskCreationOptions.RunContinuationsAsynchronously);
            private int staleRequests;
            private int freshRequests;

            public StaleTokenHandler(string stale)
            {
                this.stale = stale;
            }

            public int FreshRequests
            {
                get { return freshRequests; }
            }

            protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
            {
                if (request.Headers.Authorization.Parameter == stale)
                {
                    int k = Interlocked.Increment(ref staleRequests);
                    if (k == 2)
                    {
                        bothArrived.TrySetResult(true);
                    }
                    await bothArrived.Task.ConfigureAwait(false);
                    if (k == 2)
                    {
                        await firstRetried.Task.ConfigureAwait(false);
                    }
                    return new HttpResponseMessage(HttpStatusCode.Unauthorized);
                }
                Interlocked.Increment(ref freshRequests);
                firstRetried.TrySetResult(true);
                return new HttpResponseMessage(HttpStatusCode.OK);
            }
        }

        /// <summary>
        /// Another origin on loopback: a raw one-request-per-connection HTTP server on a free
        /// port that records each request's header block and answers <c>status</c> (200 by
        /// default; 401 with a Bearer challenge) with an empty body.
        /// </summary>
        private sealed class OtherOrigin : IDisposable
        {
            private readonly TcpListener listener = new TcpListener(IPAddress.Loopback, 0);
            private readonly Thread thread;
            private readonly string reply;
            public readonly List<string> Requests = new List<string>();

            public OtherOrigin(int status = 200)
            {
                reply = status == 401
                    ? "HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Bearer error=\"invalid_token\"\r\n"
                    : "HTTP/1.1 " + status + " Status\r\n";
                reply += "Content-Length: 0\r\nConnection: close\r\n\r\n";
                listener.Start();
                thread = new Thread(Serve) { IsBackground = true };
                thread.Start();
            }

            public string Url
            {
                get { return "http://127.0.0.1:" + ((IPEndPoint)listener.LocalEndpoint).Port; }
            }

            private void Serve()
            {
                try
                {
                    while (true)
                    {
                        using (TcpClient client = listener.AcceptTcpClient())
                        using (NetworkStream stream = client.GetStream())
                        {
                            StringBuilder head = new StringBuilder();
                            while (!head.ToString().EndsWith("\r\n\r\n", StringComparison.Ordinal))
                            {
                                int b = stream.ReadByte();
                                if (b < 0)
                                {
                                    break;
                                }
                                head.Append((char)b);
                            }
                            lock (Requests)
                            {
                                Requests.Add(head.ToString());
                            }
                            byte[] bytes = Encoding.ASCII.GetBytes(reply);
                            stream.Write(bytes, 0, bytes.Length);
                        }
                    }
                }
                catch (SocketException)
                {
                    // listener stopped
                }
                catch (ObjectDisposedException)
                {
                }
            }

            public void Dispose()
            {
                listener.Stop();
            }
        }

        // --- library facts ---------------------------------------------------------------

        [Test]
        public static void VersionIsSemver()
        {
            Assert.True(Regex.IsMatch(Library.Version, @"^\d+\.\d+\.\d+"), "a version like 0.1.0, got '" + Library.Version + "'");
        }

        [Test]
        public static void ResultCodesMirrorTheCEnum()
        {
            string[] cNames =
            {
                "CLOUDAUTH_OK", "CLOUDAUTH_ERR_INVALID_ARGUMENT", "CLOUDAUTH_ERR_BUFFER_TOO_SMALL",
                "CLOUDAUTH_ERR_INSECURE_URL", "CLOUDAUTH_ERR_NETWORK", "CLOUDAUTH_ERR_TIMEOUT",
                "CLOUDAUTH_ERR_AUTH_REJECTED", "CLOUDAUTH_ERR_TOKEN_ENDPOINT", "CLOUDAUTH_ERR_BAD_TOKEN_RESPONSE",
                "CLOUDAUTH_ERR_TOO_LARGE", "CLOUDAUTH_ERR_INTERNAL", "CLOUDAUTH_ERR_CANCELLED",
                "CLOUDAUTH_ERR_WOULD_BLOCK",
            };
            Array values = Enum.GetValues(typeof(ResultCode));
            Assert.Equal(cNames.Length, values.Length, "number of result codes");
            foreach (ResultCode code in values)
            {
                Assert.Equal(cNames[(int)code], Library.ResultName(code), "cloudauth_result_name(" + code + ")");
                // The enum's own name, in C spelling: TooLarge -> TOO_LARGE.
                string snake = Regex.Replace(code.ToString(), "(?<=[a-z])(?=[A-Z])", "_").ToUpperInvariant();
                Assert.True(cNames[(int)code].EndsWith("_" + snake, StringComparison.Ordinal), code + " is spelled " + cNames[(int)code] + " in C");
            }
            Assert.Equal("CLOUDAUTH_UNKNOWN_RESULT", Library.ResultName((ResultCode)99), "name of an unknown code");
        }

        // --- token lifecycle: stats, events, rotation, environment ------------------------

        [Test]
        public static void StatsCountTokenRequestsResendsAndEvents()
        {
            List<Event> events = new List<Event>();
            standin.Configure("{\"token_script\": [{\"status\": 503, \"headers\": {\"Retry-After\": \"0\"}}]}");
            using (Session session = new Session(Options("refresh_mode", "inline"), e => { lock (events) { events.Add(e); } }))
            {
                Assert.Equal(-1L, session.GetStats().TokenExpiresInMs, "no token yet");
                session.Send("GET", "/headers");
                standin.Revoke();
                session.Send("GET", "/headers");
                Stats st = session.GetStats();
                Assert.Equal(3UL, st.TokenRequests, "503, first token, after the 401");
                Assert.Equal(3UL, st.ApiRequests, "api requests");
                Assert.Equal(1UL, st.UnauthorizedResends, "unauthorized resends");
                Assert.Equal(0UL, st.ConnectionResends, "no stale connection against the stand-in");
                Assert.Equal(0UL, st.TokenFailures, "token failures");
                Assert.True(st.TokenExpiresInMs > 3500000, "remaining life " + st.TokenExpiresInMs);
                lock (events)
                {
                    string seen = string.Join(",", events.ConvertAll(e => e.Kind + "/" + e.Reason).ToArray());
                    Assert.Equal("retry/,token_fetched/first_use,unauthorized/,token_fetched/unauthorized", seen, "events");
                    Assert.Equal((ushort)503, events[0].HttpStatus, "the retry's status");
                    foreach (Event e in events)
                    {
                        Assert.Lacks(Secret, e.Message, "event message");
                    }
                }
            }
        }

        [Test]
        public static void AThrowingEventHandlerHarmsNothing()
        {
            using (Session session = new Session(Options(), e => { throw new InvalidOperationException("boom"); }))
            {
                Assert.True(session.GetToken().Length > 0, "token despite the handler");
            }
        }

        [Test]
        public static void SetCredentialsRotatesTheSecret()
        {
            using (Session session = NewSession())
            {
                session.GetToken();
                standin.Configure("{\"clients\": {\"new-id\": \"new-secret\"}}");
                session.SetCredentials("new-id", "new-secret");
                session.Invalidate();
                session.GetToken();
                Assert.Equal(2, standin.Stat("token_requests"), "token requests");
                Assert.Throws<InvalidArgumentException>(() => session.SetCredentials("x", ""), "empty secret");
                Assert.Throws<ArgumentNullException>(() => session.SetCredentials(null, "y"), "null id");
            }
        }

        [Test]
        public static void FromEnvironmentReadsTheKnownVariables()
        {
            Environment.SetEnvironmentVariable("CATEST_CLIENT_ID", ClientId);
            Environment.SetEnvironmentVariable("CATEST_CLIENT_SECRET", Secret);
            Environment.SetEnvironmentVariable("CATEST_TOKEN_URL", standin.TokenUrl);
            Environment.SetEnvironmentVariable("CATEST_TIMEOUT_MS", "soon");
            try
            {
                InvalidArgumentException e = Assert.Throws<InvalidArgumentException>(
                    () => Session.FromEnvironment("CATEST_", new Dictionary<string, string> { { "proxy", "none" } }),
                    "a malformed variable");
                Assert.Contains("CATEST_TIMEOUT_MS", e.Message, "the message names the variable");
                Environment.SetEnvironmentVariable("CATEST_TIMEOUT_MS", "5000");
                using (Session session = Session.FromEnvironment("CATEST_", new Dictionary<string, string>
                {
                    { "base_url", standin.Url }, { "proxy", "none" },
                }))
                {
                    Assert.True(session.GetToken().Length > 0, "a token with the environment's credentials");
                }
            }
            finally
            {
                foreach (string k in new[] { "CLIENT_ID", "CLIENT_SECRET", "TOKEN_URL", "TIMEOUT_MS" })
                {
                    Environment.SetEnvironmentVariable("CATEST_" + k, null);
                }
            }
        }

        // --- async: GetTokenAsync, SendAsync, the handler ---------------------------------

        private const string ExitProbe = "--exit-with-work-in-flight";

        /// <summary>
        /// The child of <see cref="ExitWithWorkInFlightIsPromptAndClean"/>: returns from Main
        /// while requests, a token fetch and its events are in flight, so completions arrive
        /// while Mono shuts down.
        /// </summary>
        private static int ExitWithWorkInFlight()
        {
            int events = 0;
            Session session = new Session(Options(), e => Interlocked.Increment(ref events));
            List<Task<Response>> sends = new List<Task<Response>>();
            for (int i = 0; i < 30; i++)
            {
                sends.Add(session.SendAsync("GET", "/delay/" + (20 * i)));
            }
            Task.WaitAny(sends.ToArray());
            session.Invalidate();
            session.GetTokenAsync();
            Console.WriteLine("probe: " + sends.FindAll(t => t.IsCompleted).Count + " done, " + events + " events, exiting");
            return 0;
        }

        [Test]
        public static void ExitWithWorkInFlightIsPromptAndClean()
        {
            string mono = Process.GetCurrentProcess().MainModule.FileName;
            for (int round = 0; round < 5; round++)
            {
                ProcessStartInfo start = new ProcessStartInfo(mono, "--debug \"" + typeof(Tests).Assembly.Location + "\" " + ExitProbe);
                start.UseShellExecute = false;
                start.RedirectStandardOutput = true;
                start.RedirectStandardError = true;
                using (Process child = Process.Start(start))
                {
                    Task<string> output = child.StandardOutput.ReadToEndAsync();
                    Task<string> errors = child.StandardError.ReadToEndAsync();
                    bool exited = child.WaitForExit(15000);
                    if (!exited)
                    {
                        child.Kill();
                    }
                    Assert.True(exited, "round " + round + ": the process exited (Mono waits for no library thread)");
                    child.WaitForExit();
                    Assert.Equal(0, child.ExitCode, "round " + round + ": exit code; stderr: " + errors.Result);
                    Assert.True(output.Result.Contains("probe: ") && output.Result.Contains("exiting"), "round " + round + ": " + output.Result);
                }
            }
        }

        [Test]
        public static void AsyncCallsCompleteAndRunConcurrently()
        {
            using (Session session = NewSession())
            {
                string token = session.GetTokenAsync().Result;
                Assert.Equal(session.GetToken(), token, "async and blocking tokens");
                Task<Response>[] tasks = new Task<Response>[50];
                Stopwatch clock = Stopwatch.StartNew();
                for (int i = 0; i < tasks.Length; i++)
                {
                    tasks[i] = session.SendAsync("GET", "/delay/300");
                }
                Assert.True(Task.WaitAll(tasks, 20000), "all finished");
                foreach (Task<Response> t in tasks)
                {
                    Assert.Equal(200, t.Result.Status, "status");
                }
                // One after another would take 15 s; a loaded machine adds seconds, not that.
                Assert.True(clock.ElapsedMilliseconds < 7500, "50 x 300 ms together took " + clock.ElapsedMilliseconds + " ms");
                Assert.Equal(1, standin.Stat("token_requests"), "one token for all");
            }
        }

        [Test]
        public static void CancellationDuringASlowTokenFetchIsHonouredAtOnce()
        {
            int workers, ports;
            ThreadPool.GetMaxThreads(out workers, out ports);
            ThreadPool.SetMaxThreads(Math.Max(2, Environment.ProcessorCount), ports);
            try
            {
                // Cancelled after 200 ms; "at once" means well before the 4 s fetch ends.
                standin.Configure("{\"token_delay_ms\": 4000}");
                using (Session session = NewSession())
                using (CancellationTokenSource cts = new CancellationTokenSource(200))
                {
                    Stopwatch clock = Stopwatch.StartNew();
                    Task<Response> send = session.SendAsync("GET", "/headers", null, null, cts.Token);
                    Assert.True(Catch(send) is OperationCanceledException, "cancelled");
                    Assert.True(clock.ElapsedMilliseconds < 2500, "returned after " + clock.ElapsedMilliseconds + " ms");

                    HttpClient client = AuthorizedClient(session);
                    session.Invalidate();
                    using (CancellationTokenSource cts2 = new CancellationTokenSource(200))
                    {
                        clock.Restart();
                        Task<HttpResponseMessage> get = client.GetAsync(standin.Url + "/headers", cts2.Token);
                        Assert.True(Catch(get) is OperationCanceledException, "the handler honours cancellation");
                        Assert.True(clock.ElapsedMilliseconds < 2500, "handler returned after " + clock.ElapsedMilliseconds + " ms");
                    }
                    // The session stays usable.
                    Assert.Equal(200, session.SendAsync("GET", "/headers").Result.Status, "after cancellation");
                }
            }
            finally
            {
                ThreadPool.SetMaxThreads(workers, ports);
            }
        }

        [Test]
        public static void DisposeWithRequestsInFlightEndsThemCancelled()
        {
            Session session = NewSession();
            session.GetToken();
            Task<Response> slow = session.SendAsync("GET", "/delay/3000");
            Thread.Sleep(100);
            session.Dispose();
            CloudAuthException e = Catch(slow) as CloudAuthException;
            Assert.True(e != null && e.Code == ResultCode.Cancelled, "cancelled by dispose: " + e);
        }

        [Test]
        public static void AHandlerWithoutInnerHandlerTakesTheFactorysOne()
        {
            using (Session session = NewSession())
            {
                CloudAuthHandler handler = CloudAuthHandler.WithoutInnerHandler(session);
                Assert.True(handler.InnerHandler == null, "no inner handler yet");
                handler.InnerHandler = new HttpClientHandler { UseProxy = false };
                using (HttpClient client = new HttpClient(handler))
                {
                    Assert.Equal(HttpStatusCode.OK, client.GetAsync(standin.Url + "/headers").Result.StatusCode, "status");
                }
            }
        }

        private static Exception Catch(Task task)
        {
            try
            {
                task.Wait(10000);
            }
            catch (AggregateException e)
            {
                return e.InnerException;
            }
            return null;
        }

        // --- success paths ---------------------------------------------------------------

        [Test]
        public static void TokenIsFetchedOnceAndCached()
        {
            using (Session session = NewSession())
            {
                Assert.Equal(0, standin.Stat("token_requests"), "token requests before first use");
                string token = session.GetToken();
                Assert.True(token.Length > 0, "a non-empty token");
                Assert.Equal(token, session.GetToken(), "the second GetToken (cached)");
                Assert.Equal(1, standin.Stat("token_requests"), "token requests");
            }
        }

        [Test]
        public static void TokenExpiresInIsTheTokensRemainingLife()
        {
            standin.Configure("{\"token_expires_in\": 120}");
            using (Session session = NewSession("refresh_skew_s", "0"))
            {
                TimeSpan left = session.GetTokenExpiresIn(); // fetches the first token
                Assert.True(left.TotalSeconds >= 118 && left.TotalSeconds <= 120, "118..120 s left, got " + left);
                Assert.Equal(1, standin.Stat("token_requests"), "token requests");
                session.GetToken();
                Assert.True(session.GetTokenExpiresIn() <= left, "no more life later");
                Assert.Equal(1, standin.Stat("token_requests"), "token requests after GetToken");
            }
        }

        [Test]
        public static void TokenLongerThanTheFirstBufferIsReturnedWhole()
        {
            // A scripted token response; the token is longer than the binding's first buffer,
            // so GetToken goes through CLOUDAUTH_ERR_BUFFER_TOO_SMALL and grows it.
            string longToken = "eyJ" + new string('x', 5000) + ".sig";
            string body = "{\"access_token\": " + MiniJson.Quote(longToken) + ", \"expires_in\": 3600, \"token_type\": \"Bearer\"}";
            standin.Configure("{\"token_script\": [{\"status\": 200, \"headers\": {\"Content-Type\": \"application/json\"}, \"body\": " + MiniJson.Quote(body) + "}]}");
            using (Session session = NewSession())
            {
                Assert.True(session.GetToken() == longToken, "GetToken returns the whole long token");
                Assert.True(session.GetToken() == longToken, "and again from the cache");
                Assert.Equal(1, standin.Stat("token_requests"), "token requests");
            }
        }

        [Test]
        public static void InvalidateFetchesANewToken()
        {
            using (Session session = NewSession())
            {
                string first = session.GetToken();
                session.Invalidate();
                string second = session.GetToken();
                Assert.True(first != second, "a different token after Invalidate");
                Assert.Equal(2, standin.Stat("token_requests"), "token requests");
            }
        }

        [Test]
        public static void SendRoundTripsABinaryBody()
        {
            byte[] body = new byte[1024];
            for (int i = 0; i < body.Length; i++)
            {
                body[i] = (byte)(i * 7); // every byte value, NULs included
            }
            using (Session session = NewSession())
            {
                Response r = session.Send("POST", "/echo?x=1&y=two", null, body);
                Assert.Equal(200, r.Status, "status");
                Assert.True(r.IsSuccessStatusCode, "IsSuccessStatusCode");
                Assert.Bytes(body, r.Body, "echoed body");
                Assert.Equal("POST", r.GetHeader("X-Echo-Method"), "X-Echo-Method");
                Assert.Equal("x=1&y=two", r.GetHeader("x-echo-query"), "X-Echo-Query");
                Assert.Equal("application/octet-stream", r.Headers["CONTENT-TYPE"], "Content-Type, looked up in upper case");
                Assert.Equal("1024", r.Headers["content-length"], "Content-Length");
                Assert.Equal(null, r.GetHeader("X-Not-There"), "an absent header");
                Assert.True(r.Headers.Contains("x-echo-method"), "Headers.Contains");
                Assert.Equal(1, r.Headers.GetValues("X-ECHO-METHOD").Count, "GetValues count");
                int seen = 0;
                foreach (KeyValuePair<string, string> h in r.Headers)
                {
                    Assert.Equal(h.Key.ToLowerInvariant(), h.Key, "header names are lower case");
                    seen++;
                }
                Assert.Equal(r.Headers.Count, seen, "enumerated headers");
                Assert.True(seen >= 4, "at least the four headers checked above");
            }
        }

        [Test]
        public static void SendWithoutBodyOrHeaders()
        {
            using (Session session = NewSession())
            {
                Response r = session.Send("GET", "/echo");
                Assert.Equal(200, r.Status, "status");
                Assert.Equal(0, r.Body.Length, "body length");
                Assert.Equal("", r.Text, "text");
                Assert.Equal("GET", r.GetHeader("x-echo-method"), "X-Echo-Method");

                Response empty = session.Send("PUT", "/echo", new Dictionary<string, string>(), new byte[0]);
                Assert.Equal(200, empty.Status, "status with an empty body array");
                Assert.Equal(0, empty.Body.Length, "echoed empty body");
            }
        }

        [Test]
        public static void SendCarriesHeadersAndTheBearerToken()
        {
            using (Session session = NewSession())
            {
                Dictionary<string, string> headers = new Dictionary<string, string>
                {
                    { "X-Custom", "value-1" },
                    { "Accept", "application/json" },
                };
                Response r = session.Send("GET", standin.Url + "/headers", headers);
                Assert.Equal(200, r.Status, "status");
                Dictionary<string, object> seen = (Dictionary<string, object>)Json(r.Text)["headers"];
                Assert.Equal("value-1", (string)seen["x-custom"], "x-custom at the server");
                Assert.Equal("application/json", (string)seen["accept"], "accept at the server");
                Assert.True((string)seen["authorization"] == "Bearer " + session.GetToken(), "Authorization is Bearer + GetToken()");
                Assert.Contains("cloudauth/", (string)seen["user-agent"], "default User-Agent");
            }
        }

        [Test]
        public static void UnicodeTextRoundTripsAsUtf8()
        {
            string text = "grüße, 東京, emoji \U0001F600";
            using (Session session = NewSession())
            {
                Response r = session.Send("POST", "/echo", null, Encoding.UTF8.GetBytes(text));
                Assert.Equal(text, r.Text, "Response.Text");
            }
        }

        [Test]
        public static void HttpErrorStatusIsAResponseNotAnException()
        {
            using (Session session = NewSession())
            {
                Response r = session.Send("GET", "/status/404");
                Assert.Equal(404, r.Status, "status");
                Assert.True(!r.IsSuccessStatusCode, "404 is not success");
                Assert.Equal(404.0, (double)Json(r.Text)["status"], "JSON body");
                Assert.Equal(503, session.Send("GET", "/status/503").Status, "status 503");
            }
        }

        [Test]
        public static void SendRetriesOnceAfterRevocation()
        {
            using (Session session = NewSession())
            {
                string before = session.GetToken();
                standin.Revoke();
                Response r = session.Send("POST", "/echo", null, new byte[] { 1, 2, 3 });
                Assert.Equal(200, r.Status, "status after the retry");
                Assert.Bytes(new byte[] { 1, 2, 3 }, r.Body, "body sent again on the retry");
                Assert.True(session.GetToken() != before, "a new token");
                Assert.Equal(2, standin.Stat("token_requests"), "token requests");
                Assert.Equal(1, standin.Stat("unauthorized"), "401s served");
            }
        }

        [Test]
        public static void OptionsPassStraightThrough()
        {
            using (Session session = NewSession("auth_method", "client_secret_basic", "scope", "ocr.read", "user_agent", "dotnet-tests/1"))
            {
                Response r = session.Send("GET", "/headers");
                Dictionary<string, object> seen = (Dictionary<string, object>)Json(r.Text)["headers"];
                Assert.Equal("dotnet-tests/1", (string)seen["user-agent"], "user_agent option");

                Dictionary<string, object> token = (Dictionary<string, object>)standin.Stats()["last_token_request"];
                Dictionary<string, object> basic = (Dictionary<string, object>)token["basic"];
                Assert.True(basic != null, "client_secret_basic sends HTTP Basic");
                Assert.Equal(ClientId, (string)basic["client_id"], "client id in HTTP Basic");
                Dictionary<string, object> form = (Dictionary<string, object>)token["form"];
                Assert.Equal("ocr.read", FormValue(form["scope"]), "scope in the token request");
                Assert.True(!form.ContainsKey("client_secret"), "no client_secret in the form with client_secret_basic");
            }
        }

        private static string FormValue(object value)
        {
            List<object> list = value as List<object>;
            return list != null ? (string)list[0] : (string)value;
        }

        [Test]
        public static void EightThreadsShareOneTokenRequest()
        {
            // A slow token endpoint keeps the first fetch in flight while the others ask.
            standin.Configure("{\"token_delay_ms\": 300}");
            const int n = 8;
            using (Session session = NewSession())
            {
                string[] tokens = new string[n];
                int[] statuses = new int[n];
                Exception[] errors = new Exception[n];
                Barrier start = new Barrier(n);
                Thread[] threads = new Thread[n];
                for (int i = 0; i < n; i++)
                {
                    int k = i;
                    threads[i] = new Thread(() =>
                    {
                        try
                        {
                            start.SignalAndWait();
                            tokens[k] = session.GetToken();
                            statuses[k] = session.Send("POST", "/echo", null, new byte[] { (byte)k }).Status;
                        }
                        catch (Exception e)
                        {
                            errors[k] = e;
                        }
                    });
                    threads[i].Start();
                }
                foreach (Thread t in threads)
                {
                    t.Join();
                }
                for (int i = 0; i < n; i++)
                {
                    Assert.True(errors[i] == null, "thread " + i + " succeeded: " + errors[i]);
                    Assert.True(tokens[i] == tokens[0], "thread " + i + " got the same token");
                    Assert.Equal(200, statuses[i], "thread " + i + " status");
                }
                Assert.Equal(1, standin.Stat("token_requests"), "token requests from 8 threads");
            }
        }

        // --- failures, one per result code that can be provoked --------------------------

        [Test]
        public static void UnknownConfigKeyIsInvalidArgument()
        {
            InvalidArgumentException e = Assert.Throws<InvalidArgumentException>(
                () => NewSession("no_such_key", "1"), "new Session");
            CheckError(e, ResultCode.InvalidArgument);
            Assert.Contains("no_such_key", e.Message, "message names the key");
        }

        [Test]
        public static void MalformedValueIsInvalidArgument()
        {
            InvalidArgumentException e = Assert.Throws<InvalidArgumentException>(
                () => NewSession("timeout_ms", "soon"), "new Session");
            CheckError(e, ResultCode.InvalidArgument);
            Assert.Contains("timeout_ms", e.Message, "message names the key");
        }

        [Test]
        public static void MissingCredentialsIsInvalidArgument()
        {
            Dictionary<string, string> options = Options();
            options.Remove("client_secret");
            CheckError(Assert.Throws<InvalidArgumentException>(() => new Session(options), "new Session"), ResultCode.InvalidArgument);
        }

        [Test]
        public static void BadRequestHeadersAreInvalidArgument()
        {
            using (Session session = NewSession())
            {
                InvalidArgumentException crlf = Assert.Throws<InvalidArgumentException>(
                    () => session.Send("GET", "/echo", new Dictionary<string, string> { { "X-Bad", "a\r\nInjected: 1" } }),
                    "CR/LF in a header value");
                CheckError(crlf, ResultCode.InvalidArgument);
                InvalidArgumentException auth = Assert.Throws<InvalidArgumentException>(
                    () => session.Send("GET", "/echo", new Dictionary<string, string> { { "Authorization", "Bearer mine" } }),
                    "an Authorization header");
                CheckError(auth, ResultCode.InvalidArgument);
                Assert.Equal(0, standin.Stat("api_requests"), "API requests sent");
            }
        }

        [Test]
        public static void PlainHttpTokenUrlToARemoteHostIsInsecureUrl()
        {
            // Rejected by cloudauth_session_new, which never touches the network.
            InsecureUrlException e = Assert.Throws<InsecureUrlException>(
                () => NewSession("token_url", "http://example.com/connect/token"), "new Session");
            CheckError(e, ResultCode.InsecureUrl);
            Assert.Equal(0, standin.Stat("token_requests"), "token requests");
        }

        [Test]
        public static void ClosedPortIsNetwork()
        {
            string url = "http://127.0.0.1:" + ClosedPort() + "/connect/token";
            NetworkException e = TokenFailure<NetworkException>(ResultCode.Network, "token_url", url, "max_retries", "0");
            Assert.Contains("127.0.0.1", e.Message, "message names the host");
        }

        [Test]
        public static void SlowTokenEndpointIsTimeout()
        {
            standin.Configure("{\"token_delay_ms\": 3000}");
            TokenFailure<CloudAuthTimeoutException>(ResultCode.Timeout, "timeout_ms", "300", "max_retries", "0");
        }

        [Test]
        public static void WrongSecretIsAuthRejected()
        {
            const string wrong = "wrong-secret-7f3a9";
            AuthRejectedException e = TokenFailure<AuthRejectedException>(ResultCode.AuthRejected, "client_secret", wrong);
            Assert.Lacks(wrong, e.ToString(), "the exception");
            Assert.Contains("invalid_client", e.Message, "message carries the OAuth error");
        }

        [Test]
        public static void FailingTokenEndpointIsTokenEndpoint()
        {
            standin.Configure("{\"token_default\": {\"status\": 503, \"body\": \"down for maintenance\"}}");
            TokenEndpointException e = TokenFailure<TokenEndpointException>(
                ResultCode.TokenEndpoint, "max_retries", "1", "max_retry_wait_ms", "50");
            Assert.Contains("503", e.Message, "message carries the status");
            Assert.Equal(2, standin.Stat("token_requests"), "token requests (1 + 1 retry)");
        }

        [Test]
        public static void NonJsonTokenResponseIsBadTokenResponse()
        {
            standin.Configure("{\"token_script\": [{\"status\": 200, \"headers\": {\"Content-Type\": \"application/json\"}, \"body\": \"this is not json\"}]}");
            TokenFailure<BadTokenResponseException>(ResultCode.BadTokenResponse);
        }

        [Test]
        public static void HugeTokenResponseIsTooLarge()
        {
            standin.Configure("{\"token_script\": [{\"pad_bytes\": 1100000}]}");
            TokenFailure<TooLargeException>(ResultCode.TooLarge);
        }

        [Test]
        public static void ResponseOverMaxResponseBytesIsTooLarge()
        {
            using (Session session = NewSession("max_response_bytes", "1000"))
            {
                Assert.Equal(500, session.Send("GET", "/big?bytes=500").Body.Length, "a body under the cap");
                CheckError(Assert.Throws<TooLargeException>(() => session.Send("GET", "/big?bytes=5000"), "Send"), ResultCode.TooLarge);
            }
        }

        [Test]
        public static void ErrorMessagesNeverContainTheSecret()
        {
            // A wrong secret with characters that need URL and form encoding, sent both ways.
            const string odd = "s3cr+t:with%odd chars&=-zz9";
            List<Exception> errors = new List<Exception>();
            foreach (string method in new[] { "client_secret_post", "client_secret_basic" })
            {
                errors.Add(TokenFailure<AuthRejectedException>(ResultCode.AuthRejected, "client_secret", odd, "auth_method", method));
            }
            errors.Add(Assert.Throws<ArgumentException>(() => NewSession("client_secret", odd + "\0"), "NUL in the secret"));
            errors.Add(Assert.Throws<ArgumentException>(() => NewSession("client_secret", odd + "\uDC00"), "a lone surrogate in the secret"));
            foreach (Exception e in errors)
            {
                Assert.Lacks(odd, e.ToString(), e.GetType().Name);
                Assert.Lacks(Secret, e.ToString(), e.GetType().Name);
            }
            Assert.Equal(2, standin.Stat("token_requests"), "token requests (the two rejected ones)");
        }

        // --- argument checks in the binding ----------------------------------------------

        [Test]
        public static void NullArgumentsThrowArgumentNullException()
        {
            Assert.Throws<ArgumentNullException>(() => new Session(null), "new Session(null)");
            Assert.Throws<ArgumentNullException>(() => NewSession("client_secret", null), "a null option value");
            Assert.Throws<ArgumentNullException>(() => new CloudAuthHandler(null), "new CloudAuthHandler(null)");
            using (Session session = NewSession())
            {
                Assert.Throws<ArgumentNullException>(() => new CloudAuthHandler(session, null), "a null inner handler");
                Assert.Throws<ArgumentNullException>(() => session.Send(null, "/echo"), "Send(null method)");
                Assert.Throws<ArgumentNullException>(() => session.Send("GET", null), "Send(null url)");
                Assert.Throws<ArgumentNullException>(
                    () => session.Send("GET", "/echo", new Dictionary<string, string> { { "X-A", null } }), "a null header value");
                Assert.Throws<ArgumentNullException>(() => session.Send("GET", "/echo").Headers.GetValues(null), "GetValues(null)");
            }
            Assert.Equal(1, standin.Stat("api_requests"), "API requests (only the GetValues one)");
        }

        [Test]
        public static void UnencodableStringsThrowArgumentException()
        {
            ArgumentException nul = Assert.Throws<ArgumentException>(() => NewSession("client_secret", "demo\0secret"), "NUL in a value");
            Assert.Contains("NUL", nul.Message, "message says why");
            Assert.Lacks("demo\0secret", nul.ToString(), "the exception");
            ArgumentException surrogate = Assert.Throws<ArgumentException>(() => NewSession("client_secret", "abc\uD800"), "a lone surrogate");
            Assert.Contains("surrogate", surrogate.Message, "message says why");
            using (Session session = NewSession())
            {
                Assert.Throws<ArgumentException>(() => session.Send("GET", "/echo\0/x"), "NUL in the URL");
                Assert.Throws<ArgumentException>(
                    () => session.Send("GET", "/echo", new Dictionary<string, string> { { "X-Bad:Name", "v" } }), "':' in a header name");
                Assert.Throws<ArgumentException>(
                    () => session.Send("GET", "/echo", new Dictionary<string, string> { { "", "v" } }), "an empty header name");
            }
            Assert.Equal(0, standin.Stat("api_requests"), "API requests sent");
        }

        // --- lifetime ----------------------------------------------------------------------

        [Test]
        public static void DisposeTwiceIsFine()
        {
            Session session = NewSession();
            session.GetToken();
            session.Dispose();
            session.Dispose();
        }

        [Test]
        public static void UseAfterDisposeThrowsObjectDisposedException()
        {
            Session session = NewSession();
            session.Dispose();
            Assert.Throws<ObjectDisposedException>(() => session.GetToken(), "GetToken");
            Assert.Throws<ObjectDisposedException>(() => session.Invalidate(), "Invalidate");
            Assert.Throws<ObjectDisposedException>(() => session.Send("GET", "/echo"), "Send");
            using (HttpClient client = AuthorizedClient(session))
            {
                Assert.Throws<ObjectDisposedException>(
                    () => client.GetAsync(standin.Url + "/echo").GetAwaiter().GetResult(), "CloudAuthHandler");
            }
            Assert.Equal(0, standin.Stat("token_requests"), "token requests");
        }

        [Test]
        public static void DisposeDuringACallWaitsForIt()
        {
            Session session = NewSession();
            session.GetToken();
            int status = 0;
            Exception error = null;
            Thread caller = new Thread(() =>
            {
                try
                {
                    status = session.Send("GET", "/delay/700").Status;
                }
                catch (Exception e)
                {
                    error = e;
                }
            });
            caller.Start();
            // Dispose once the request is at the server, i.e. while Send is inside the library.
            for (int i = 0; i < 600 && standin.Stat("api_requests") == 0; i++)
            {
                Thread.Sleep(10);
            }
            Assert.Equal(1, standin.Stat("api_requests"), "the request reached the server");
            session.Dispose();
            Assert.Throws<ObjectDisposedException>(() => session.GetToken(), "GetToken after Dispose");
            caller.Join();
            Assert.True(error == null, "the call in flight completed: " + error);
            Assert.Equal(200, status, "status of the call in flight");
        }

        // --- CloudAuthHandler ----------------------------------------------------------------

        [Test]
        public static void HandlerAuthorizesHttpClient()
        {
            using (Session session = NewSession())
            using (HttpClient client = AuthorizedClient(session))
            {
                using (HttpResponseMessage r = client.GetAsync(standin.Url + "/headers").GetAwaiter().GetResult())
                {
                    Assert.Equal(200, (int)r.StatusCode, "status");
                    Dictionary<string, object> seen = (Dictionary<string, object>)Json(r.Content.ReadAsStringAsync().GetAwaiter().GetResult())["headers"];
                    Assert.True((string)seen["authorization"] == "Bearer " + session.GetToken(), "Authorization is Bearer + GetToken()");
                }
                Assert.Equal(1, standin.Stat("token_requests"), "token requests");
            }
        }

        [Test]
        public static void HandlerRetriesOnceAfterRevocationAndResendsTheBody()
        {
            // A seekable stream is streamed, rewound and sent again: the server sees it twice.
            byte[] payload = new byte[70000];
            new Random(7).NextBytes(payload);
            using (Session session = NewSession())
            using (HttpClient client = AuthorizedClient(session))
            {
                string before = session.GetToken();
                standin.Revoke();
                StreamContent content = new StreamContent(new MemoryStream(payload));
                content.Headers.TryAddWithoutValidation("Content-Type", "application/x-test");
                using (HttpResponseMessage r = client.PostAsync(standin.Url + "/echo?retry=1", content).GetAwaiter().GetResult())
                {
                    Assert.Equal(200, (int)r.StatusCode, "status after the retry");
                    Assert.Bytes(payload, r.Content.ReadAsByteArrayAsync().GetAwaiter().GetResult(), "echoed body");
                    Assert.Equal("POST", string.Join(",", r.Headers.GetValues("X-Echo-Method")), "method");
                    Assert.Equal("retry=1", string.Join(",", r.Headers.GetValues("X-Echo-Query")), "query");
                }
                Assert.True(session.GetToken() != before, "a new token");
                Assert.Equal(2, standin.Stat("token_requests"), "token requests");
                Assert.Equal(1, standin.Stat("unauthorized"), "401s served");
                List<Dictionary<string, object>> log = ApiLog();
                Assert.Equal(2, log.Count, "sent twice");
                foreach (Dictionary<string, object> entry in log)
                {
                    Dictionary<string, object> headers = (Dictionary<string, object>)entry["headers"];
                    Assert.Equal("70000", headers.ContainsKey("content-length") ? (string)headers["content-length"] : null,
                        "each send declared the whole body (the stream's length)");
                    Assert.Equal("application/x-test", (string)headers["content-type"], "the content headers on each send");
                }
            }
        }

        [Test]
        public static void HandlerDoesNotResendAOneShotStreamAfterA401()
        {
            // A stream that cannot seek is streamed (chunked: no length known) and not buffered,
            // so it cannot be sent again: the 401 is the answer, and its token is dropped.
            byte[] payload = Encoding.UTF8.GetBytes("once, and only once");
            using (Session session = NewSession())
            using (HttpClient client = AuthorizedClient(session))
            {
                session.GetToken();
                standin.Revoke();
                StreamContent content = new StreamContent(new OneShotStream(payload));
                using (HttpResponseMessage r = client.PostAsync(standin.Url + "/echo", content).GetAwaiter().GetResult())
                {
                    Assert.Equal(401, (int)r.StatusCode, "the 401, returned");
                }
                List<Dictionary<string, object>> log = ApiLog();
                Assert.Equal(1, log.Count, "one request sent");
                Dictionary<string, object> headers = (Dictionary<string, object>)log[0]["headers"];
                Assert.Equal("chunked", headers.ContainsKey("transfer-encoding") ? (string)headers["transfer-encoding"] : null,
                    "streamed chunked");
                Assert.Equal(1, standin.Stat("token_requests"), "no new token for a resend");
                using (HttpResponseMessage r = client.GetAsync(standin.Url + "/headers").GetAwaiter().GetResult())
                {
                    Assert.Equal(200, (int)r.StatusCode, "the next request");
                }
                Assert.Equal(2, standin.Stat("token_requests"), "the rejected token was dropped");

                // unknown length, no 401: the server gets every byte
                using (HttpResponseMessage r = client.PostAsync(standin.Url + "/echo", new StreamContent(new OneShotStream(payload)))
                    .GetAwaiter().GetResult())
                {
                    Assert.Equal(200, (int)r.StatusCode, "status");
                    Assert.Bytes(payload, r.Content.ReadAsByteArrayAsync().GetAwaiter().GetResult(), "echoed body");
                }
            }
        }

        [Test]
        public static void HandlerResendsASeekableStreamOnceAfterTwo401s()
        {
            // A 401 to the resend is returned, and the token it rejected is dropped as well.
            byte[] payload = Encoding.UTF8.GetBytes("twice at most");
            using (Session session = NewSession())
            using (HttpClient client = AuthorizedClient(session))
            {
                session.GetToken();
                standin.Configure("{\"api_script\": [{\"status\": 401}, {\"status\": 401}]}");
                StreamContent content = new StreamContent(new MemoryStream(payload));
                using (HttpResponseMessage r = client.PostAsync(standin.Url + "/echo", content).GetAwaiter().GetResult())
                {
                    Assert.Equal(401, (int)r.StatusCode, "the resend's 401, returned");
                }
                Assert.Equal(2, standin.Stat("api_requests"), "sent, resent once, no more");
                Assert.Equal(2, standin.Stat("token_requests"), "one new token for the resend");
                using (HttpResponseMessage r = client.GetAsync(standin.Url + "/headers").GetAwaiter().GetResult())
                {
                    Assert.Equal(200, (int)r.StatusCode, "the next request");
                }
                Assert.Equal(3, standin.Stat("token_requests"), "the resend's rejected token was dropped too");
            }
        }

        [Test]
        public static void HandlerFollowsA307WithASeekableStreamOnly()
        {
            byte[] payload = new byte[30000];
            new Random(9).NextBytes(payload);
            string redirect = standin.Url + "/redirect?code=307&to=" + Uri.EscapeDataString(standin.Url + "/echo");
            using (Session session = NewSession())
            using (HttpClient client = AuthorizedClient(session))
            {
                using (HttpResponseMessage r = client.PostAsync(redirect, new StreamContent(new MemoryStream(payload))).GetAwaiter().GetResult())
                {
                    Assert.Equal(200, (int)r.StatusCode, "followed");
                    Assert.Bytes(payload, r.Content.ReadAsByteArrayAsync().GetAwaiter().GetResult(), "the whole body, rewound");
                }
                List<Dictionary<string, object>> log = ApiLog();
                Assert.Equal(2, log.Count, "the redirect and the echo");
                Assert.Equal("30000", (string)((Dictionary<string, object>)log[0]["headers"])["content-length"], "the first send's body");
                Assert.Equal("30000", (string)((Dictionary<string, object>)log[1]["headers"])["content-length"], "the second send's body");

                using (HttpResponseMessage r = client.PostAsync(redirect, new StreamContent(new OneShotStream(payload))).GetAwaiter().GetResult())
                {
                    Assert.Equal(307, (int)r.StatusCode, "a one-shot stream cannot follow: the 307 is the answer");
                }
                Assert.Equal(3, ApiLog().Count, "one more request sent");
            }
        }

        [Test]
        public static void HandlerResponseStreamsWithResponseHeadersRead()
        {
            byte[] payload = new byte[300 * 1024];
            new Random(11).NextBytes(payload);
            using (Session session = NewSession())
            using (HttpClient client = AuthorizedClient(session))
            {
                HttpRequestMessage post = new HttpRequestMessage(HttpMethod.Post, standin.Url + "/echo") { Content = new ByteArrayContent(payload) };
                using (HttpResponseMessage r = client.SendAsync(post, HttpCompletionOption.ResponseHeadersRead).GetAwaiter().GetResult())
                using (Stream body = r.Content.ReadAsStreamAsync().GetAwaiter().GetResult())
                {
                    Assert.Equal(200, (int)r.StatusCode, "status");
                    MemoryStream got = new MemoryStream();
                    byte[] buffer = new byte[4096];
                    int n;
                    while ((n = body.Read(buffer, 0, buffer.Length)) > 0)
                    {
                        got.Write(buffer, 0, n);
                    }
                    Assert.Bytes(payload, got.ToArray(), "every byte, in order");
                }
                // stop early: dispose after the first bytes of a large body, then go on
                using (HttpResponseMessage r = client.GetAsync(standin.Url + "/big?bytes=50000000", HttpCompletionOption.ResponseHeadersRead)
                    .GetAwaiter().GetResult())
                using (Stream body = r.Content.ReadAsStreamAsync().GetAwaiter().GetResult())
                {
                    byte[] first = new byte[100];
                    Assert.True(body.Read(first, 0, first.Length) > 0 && first[0] == (byte)'a', "the first bytes");
                }
                using (HttpResponseMessage r = client.GetAsync(standin.Url + "/headers").GetAwaiter().GetResult())
                {
                    Assert.Equal(200, (int)r.StatusCode, "the handler goes on");
                }
            }
        }

        private static List<Dictionary<string, object>> ApiLog()
        {
            List<Dictionary<string, object>> entries = new List<Dictionary<string, object>>();
            foreach (object entry in (List<object>)standin.Stats()["api_log"])
            {
                entries.Add((Dictionary<string, object>)entry);
            }
            return entries;
        }

        [Test]
        public static void HandlerConcurrent401sAllRecover()
        {
            using (Session session = NewSession())
            using (HttpClient client = AuthorizedClient(session))
            {
                session.GetToken();
                standin.Revoke();
                Task<HttpResponseMessage>[] calls = new Task<HttpResponseMessage>[6];
                for (int i = 0; i < calls.Length; i++)
                {
                    calls[i] = client.GetAsync(standin.Url + "/headers");
                }
                Task.WaitAll(calls);
                foreach (Task<HttpResponseMessage> call in calls)
                {
                    Assert.Equal(200, (int)call.Result.StatusCode, "status");
                    call.Result.Dispose();
                }
                // 1 before the revocation, then at least one refresh; the token comparison
                // before Invalidate keeps it far from one refresh per request.
                int requests = standin.Stat("token_requests");
                Assert.True(requests >= 2 && requests <= 1 + calls.Length, "2.." + (1 + calls.Length) + " token requests, got " + requests);
            }
        }

        [Test]
        public static void HandlerDoesNotDropATokenAnotherRequestAlreadyReplaced()
        {
            using (Session session = NewSession())
            {
                StaleTokenHandler inner = new StaleTokenHandler(session.GetToken());
                using (HttpClient client = new HttpClient(new CloudAuthHandler(session, inner)))
                {
                    Task<HttpResponseMessage> a = client.GetAsync(standin.Url + "/a");
                    Task<HttpResponseMessage> b = client.GetAsync(standin.Url + "/b");
                    Assert.True(Task.WaitAll(new Task[] { a, b }, 60000), "both requests finished (hang guard)");
                    Assert.Equal(200, (int)a.Result.StatusCode, "first request after its retry");
                    Assert.Equal(200, (int)b.Result.StatusCode, "second request after its retry");
                    Assert.Equal(2, inner.FreshRequests, "retries");
                }
                // The second 401 came after the first retry had replaced the token: that new
                // token must not be dropped, so no third token request.
                Assert.Equal(2, standin.Stat("token_requests"), "token requests");
            }
        }

        [Test]
        public static void SessionOriginIsBaseUrls()
        {
            using (Session session = NewSession("base_url", standin.Url + "/v4.0/words/"))
            {
                Assert.Equal(standin.Url, session.Origin, "Origin");
            }
            using (Session session = NewSession("base_url", "HTTPS://API.Example.com:443/x"))
            {
                Assert.Equal("https://api.example.com", session.Origin, "Origin, normalized");
            }
            Dictionary<string, string> options = Options();
            options.Remove("base_url");
            using (Session session = new Session(options))
            {
                Assert.Equal("https://api.aspose.cloud", session.Origin, "Origin without base_url");
            }
            Session disposed = NewSession();
            disposed.Dispose();
            Assert.Throws<ObjectDisposedException>(() => { string o = disposed.Origin; }, "Origin after Dispose");
            Assert.Equal(0, standin.Stat("token_requests"), "token requests");
        }

        [Test]
        public static void HandlerSendsNoTokenToAnotherOrigin()
        {
            // The session's origin is the stand-in's; the other origin records what it got.
            foreach (int status in new[] { 200, 401 })
            {
                standin.Reset();
                using (OtherOrigin other = new OtherOrigin(status))
                using (Session session = NewSession())
                using (HttpClient client = AuthorizedClient(session))
                {
                    HttpRequestMessage request = new HttpRequestMessage(HttpMethod.Post, other.Url + "/upload");
                    request.Content = new StringContent("body");
                    using (HttpResponseMessage r = client.SendAsync(request).GetAwaiter().GetResult())
                    {
                        Assert.Equal(status, (int)r.StatusCode, status + ": the other origin's answer, as is");
                    }
                    lock (other.Requests)
                    {
                        Assert.Equal(1, other.Requests.Count, status + ": requests that reached the other origin");
                        Assert.True(other.Requests[0].IndexOf("authorization:", StringComparison.OrdinalIgnoreCase) < 0, status + ": no Authorization header");
                    }
                    Assert.Equal(0, standin.Stat("token_requests"), status + ": no token fetched, none dropped");
                }
            }
        }

        [Test]
        public static void HandlerAuthorizesBaseUrlsOriginNotTheTokenServers()
        {
            // Tokens come from the stand-in, but base_url names the other origin: only it gets them.
            using (OtherOrigin other = new OtherOrigin())
            using (Session session = NewSession("base_url", other.Url + "/api/"))
            using (HttpClient client = AuthorizedClient(session))
            {
                using (HttpResponseMessage r = client.GetAsync(standin.Url + "/public/headers").GetAwaiter().GetResult())
                {
                    string body = r.Content.ReadAsStringAsync().GetAwaiter().GetResult();
                    Dictionary<string, object> headers = (Dictionary<string, object>)Json(body)["headers"];
                    Assert.True(!headers.ContainsKey("authorization"), "no token to the token server's origin");
                }
                client.GetAsync(other.Url + "/api/x").GetAwaiter().GetResult().Dispose();
                // A redirect from another origin (the stand-in) into the session's adds no token:
                // the request started where the token does not go.
                string hop = standin.Url + "/public/redirect?to=" + Uri.EscapeDataString(other.Url + "/api/back");
                client.GetAsync(hop).GetAwaiter().GetResult().Dispose();
                lock (other.Requests)
                {
                    Assert.Equal(2, other.Requests.Count, "requests that reached base_url's origin");
                    Assert.Contains("Bearer " + session.GetToken(), other.Requests[0], "the token at base_url's origin");
                    Assert.True(other.Requests[1].IndexOf("authorization:", StringComparison.OrdinalIgnoreCase) < 0, "no token on a hop into the origin");
                }
                Assert.Equal(0, standin.PathsWithAuthorization().Count, "requests to the stand-in with a token");
            }
        }

        [Test]
        public static void RedirectToAnotherOriginNeverCarriesTheToken()
        {
            using (OtherOrigin other = new OtherOrigin())
            using (Session session = NewSession())
            using (HttpClient client = AuthorizedClient(session))
            {
                string redirect = "/redirect?to=" + Uri.EscapeDataString(other.Url + "/landing");
                Assert.Equal(200, session.Send("GET", redirect).Status, "Session.Send through the redirect");
                using (HttpResponseMessage r = client.GetAsync(standin.Url + redirect).GetAwaiter().GetResult())
                {
                    Assert.Equal(200, (int)r.StatusCode, "CloudAuthHandler through the redirect");
                }
                lock (other.Requests)
                {
                    Assert.Equal(2, other.Requests.Count, "requests that reached the other origin");
                    foreach (string request in other.Requests)
                    {
                        Assert.Contains("GET /landing ", request, "the redirected request");
                        Assert.True(request.IndexOf("authorization:", StringComparison.OrdinalIgnoreCase) < 0, "no Authorization header at the other origin");
                        Assert.Lacks(session.GetToken(), request, "the redirected request");
                    }
                }
            }
        }

        [Test]
        public static void HandlerNeverResendsTheTokenToAnotherOriginThatAnswers401()
        {
            foreach (string code in new[] { "302", "307" })
            {
                standin.Reset();
                using (OtherOrigin other = new OtherOrigin(401))
                using (Session session = NewSession())
                using (HttpClient client = AuthorizedClient(session))
                {
                    string token = session.GetToken();
                    string redirect = "/redirect?code=" + code + "&to=" + Uri.EscapeDataString(other.Url + "/landing");
                    using (HttpResponseMessage r = client.GetAsync(standin.Url + redirect).GetAwaiter().GetResult())
                    {
                        Assert.Equal(401, (int)r.StatusCode, code + ": the other origin's 401, returned as is");
                    }
                    lock (other.Requests)
                    {
                        Assert.Equal(1, other.Requests.Count, code + ": requests that reached the other origin");
                        Assert.True(other.Requests[0].IndexOf("authorization:", StringComparison.OrdinalIgnoreCase) < 0, code + ": no Authorization header at the other origin");
                        Assert.Lacks(token, other.Requests[0], code + ": the request at the other origin");
                    }
                    // That 401 said nothing about the token: kept, no new token request, and
                    // the token went to the stand-in once (the redirect).
                    Assert.Equal(1, standin.Stat("token_requests"), code + ": token requests");
                    Assert.True(session.GetToken() == token, code + ": the token is kept");
                    Assert.Equal(1, standin.PathsWithAuthorization().Count, code + ": requests with the token");
                }
            }
        }

        [Test]
        public static void HandlerCarriesTheTokenAcrossARedirectWithinTheOrigin()
        {
            // The platform handler drops Authorization on every redirect: the handler follows
            // them itself, so the hop within the origin carries the token (one token, 200), where
            // it used to get a 401, drop a valid token and fetch a new one, again and again.
            foreach (string code in new[] { "302", "307" })
            {
                standin.Reset();
                using (Session session = NewSession())
                using (HttpClient client = AuthorizedClient(session))
                {
                    string first = session.GetToken();
                    string redirect = "/redirect?code=" + code + "&to=" + Uri.EscapeDataString(standin.Url + "/headers");
                    for (int i = 0; i < 3; i++)
                    {
                        using (HttpResponseMessage r = client.GetAsync(standin.Url + redirect).GetAwaiter().GetResult())
                        {
                            Assert.Equal(200, (int)r.StatusCode, code + ": status, call " + i);
                            Assert.Equal(standin.Url + "/headers", r.RequestMessage.RequestUri.ToString(), code + ": the final URI");
                        }
                    }
                    Assert.Equal(1, standin.Stat("token_requests"), code + ": token requests");
                    Assert.Equal(0, standin.Stat("unauthorized"), code + ": 401s");
                    Assert.True(session.GetToken() == first, code + ": the token is kept");
                    Assert.Equal(6, standin.PathsWithAuthorization().Count, code + ": hops with the token");
                }
            }
            // A POST redirected with 303 becomes a GET without the body, as HttpClientHandler does.
            standin.Reset();
            using (Session session = NewSession())
            using (HttpClient client = AuthorizedClient(session))
            using (HttpResponseMessage r = client.PostAsync(
                standin.Url + "/redirect?code=303&to=" + Uri.EscapeDataString(standin.Url + "/headers"),
                new StringContent("body")).GetAwaiter().GetResult())
            {
                Assert.Equal(200, (int)r.StatusCode, "303: status");
                Assert.Equal("GET", r.RequestMessage.Method.Method, "303: the method of the last hop");
            }
        }

        [Test]
        public static void HandlerDropsNoTokenWhenTheInnerHandlerFollowedTheRedirect()
        {
            // An inner handler that follows redirects itself drops Authorization on the hop: its
            // 401 says nothing about the token, which is kept (no token request, no resend).
            HttpClientHandler inner = new HttpClientHandler { UseProxy = false };
            using (HttpClient warm = new HttpClient(inner, false))
            {
                // Started outside the CloudAuthHandler: its redirect setting can no longer change.
                warm.GetAsync(standin.Url + "/public/status/200").GetAwaiter().GetResult().Dispose();
            }
            standin.Reset();
            using (Session session = NewSession())
            using (HttpClient client = new HttpClient(new CloudAuthHandler(session, inner)))
            {
                string first = session.GetToken();
                string redirect = "/redirect?to=" + Uri.EscapeDataString(standin.Url + "/status/200");
                using (HttpResponseMessage r = client.GetAsync(standin.Url + redirect).GetAwaiter().GetResult())
                {
                    Assert.Equal(401, (int)r.StatusCode, "the unauthorized hop's 401, returned as is");
                }
                Assert.Equal(1, standin.Stat("token_requests"), "token requests");
                Assert.True(session.GetToken() == first, "the token is kept");
                Assert.Equal(1, standin.PathsWithAuthorization().Count, "requests with the token");
            }
        }

        [Test]
        public static void HandlerAllowInsecureHttpIsTheLibrarysRule()
        {
            // A remote host over plain http needs allow_insecure_http, in any form the library
            // accepts. The stand-in serves as the HTTP proxy, so nothing leaves the machine.
            const string remote = "http://api.example.com/headers";
            foreach (string value in new[] { "false", "0", "no", "OFF" })
            {
                standin.Reset();
                using (Session session = NewSession("allow_insecure_http", value, "base_url", "http://api.example.com"))
                using (HttpClient client = ThroughStandin(session))
                {
                    Assert.Throws<InsecureUrlException>(
                        () => client.GetAsync(remote).GetAwaiter().GetResult(), "allow_insecure_http=" + value);
                    Assert.Equal(0, standin.Stat("token_requests"), value + ": token requests");
                    Assert.Equal(0, ((List<object>)standin.Stats()["api_log"]).Count, value + ": requests sent");
                }
            }
            foreach (string value in new[] { "true", "1", "yes", "ON", "TRUE" })
            {
                standin.Reset();
                using (Session session = NewSession("allow_insecure_http", value, "base_url", "http://api.example.com"))
                using (HttpClient client = ThroughStandin(session))
                using (HttpResponseMessage r = client.GetAsync(remote).GetAwaiter().GetResult())
                {
                    Assert.Equal(200, (int)r.StatusCode, "allow_insecure_http=" + value);
                    Assert.Equal(remote, string.Join(",", standin.PathsWithAuthorization()), value + ": requests with the token");
                }
            }
        }

        [Test]
        public static void HandlerPassesNon401StatusesThrough()
        {
            using (Session session = NewSession())
            using (HttpClient client = AuthorizedClient(session))
            using (HttpResponseMessage r = client.GetAsync(standin.Url + "/status/403").GetAwaiter().GetResult())
            {
                Assert.Equal(403, (int)r.StatusCode, "status");
                Assert.Equal(1, standin.Stat("token_requests"), "no refresh for a 403");
            }
        }

        [Test]
        public static void HandlerRefusesPlainHttpToRemoteHosts()
        {
            // The recorder answers: nothing leaves the process.
            RecordingHandler recorder = new RecordingHandler();
            using (Session session = NewSession("base_url", "http://example.com/v5.0"))
            using (HttpClient client = new HttpClient(new CloudAuthHandler(session, recorder)))
            {
                InsecureUrlException e = Assert.Throws<InsecureUrlException>(
                    () => client.GetAsync("http://example.com/v5.0/ocr").GetAwaiter().GetResult(), "GET http://example.com");
                Assert.Equal(ResultCode.InsecureUrl, e.Code, "Code");
                Assert.Equal(0, recorder.Requests.Count, "requests passed to the inner handler");
                Assert.Equal(0, standin.Stat("token_requests"), "token requests");
            }
            using (Session session = NewSession("base_url", "https://example.com/v5.0"))
            using (HttpClient client = new HttpClient(new CloudAuthHandler(session, recorder)))
            {
                client.GetAsync("https://example.com/v5.0/ocr").GetAwaiter().GetResult().Dispose();
                Assert.Equal(1, recorder.Requests.Count, "requests passed to the inner handler");
                Assert.True(recorder.Requests[0].Headers.Authorization.ToString() == "Bearer " + session.GetToken(), "the token on the https request");
            }
            using (Session session = NewSession("allow_insecure_http", "true", "base_url", "http://example.com"))
            using (HttpClient client = new HttpClient(new CloudAuthHandler(session, recorder)))
            {
                client.GetAsync("http://example.com/v5.0/ocr").GetAwaiter().GetResult().Dispose();
                Assert.Equal(2, recorder.Requests.Count, "with allow_insecure_http=true the request goes through");
                Assert.True(recorder.Requests[1].Headers.Authorization.ToString() == "Bearer " + session.GetToken(), "the token on the http request");
            }
        }

        [Test]
        public static void HandlerChecksEveryNewOriginAfterAnAllowedOne()
        {
            // The handler remembers that the library allowed the session's origin; the library's
            // URL length limit still applies there. Other origins get no token, so no check.
            RecordingHandler recorder = new RecordingHandler();
            using (Session session = NewSession("base_url", "https://example.com"))
            using (HttpClient client = new HttpClient(new CloudAuthHandler(session, recorder)))
            {
                client.GetAsync("https://example.com/a").GetAwaiter().GetResult().Dispose();
                client.GetAsync("https://EXAMPLE.com:443/b").GetAwaiter().GetResult().Dispose();
                Assert.Throws<InvalidArgumentException>(
                    () => client.GetAsync("https://example.com/" + new string('a', 9000)).GetAwaiter().GetResult(), "a 9 KB URL");
                client.GetAsync("http://example.com/a").GetAwaiter().GetResult().Dispose();
                client.GetAsync("https://example.com:8443/a").GetAwaiter().GetResult().Dispose();
                client.GetAsync("https://www.example.com/a").GetAwaiter().GetResult().Dispose();
                Assert.Equal(5, recorder.Requests.Count, "requests passed to the inner handler");
                string bearer = "Bearer " + session.GetToken();
                for (int i = 0; i < 5; i++)
                {
                    AuthenticationHeaderValue sent = recorder.Requests[i].Headers.Authorization;
                    Assert.Equal(i < 2 ? bearer : "(none)", sent == null ? "(none)" : sent.ToString(), recorder.Requests[i].RequestUri + ": Authorization");
                }
            }
        }

        [Test]
        public static void HandlerSendsTheNewTokenOnceTheOldOneIsDropped()
        {
            // The handler reuses the token's string and header while the token is unchanged;
            // a new token must show up on the very next request.
            using (Session session = NewSession())
            using (HttpClient client = AuthorizedClient(session))
            {
                string first = SentAuthorization(client);
                Assert.True(first == "Bearer " + session.GetToken(), "the first token");
                Assert.True(ReferenceEquals(session.GetTokenAsync().GetAwaiter().GetResult(), session.GetTokenAsync().GetAwaiter().GetResult()),
                    "an unchanged cached token comes back as the same string");
                session.Invalidate();
                string fresh = session.GetToken();
                string second = SentAuthorization(client);
                Assert.True(second == "Bearer " + fresh, "the new token on the next request");
                Assert.True(second != first, "the new token differs from the dropped one");
                Assert.Equal(2, standin.Stat("token_requests"), "token requests");
            }
        }

        private static string SentAuthorization(HttpClient client)
        {
            using (HttpResponseMessage r = client.GetAsync(standin.Url + "/headers").GetAwaiter().GetResult())
            {
                Assert.Equal(200, (int)r.StatusCode, "status");
                Dictionary<string, object> seen = (Dictionary<string, object>)Json(r.Content.ReadAsStringAsync().GetAwaiter().GetResult())["headers"];
                return (string)seen["authorization"];
            }
        }
    }
}
