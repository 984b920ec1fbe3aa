// .NET on Mono: HttpClient with CloudAuthHandler against a bare HttpClient sending a fixed
// Authorization header, same nginx endpoint, one request at a time, interleaved rounds; and the
// handler's own cost with no network (both clients over a handler that answers at once).
// Prints "R dotnet.* value" lines for bench/report.py. Run by bench/run.sh.
using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Net;
using System.Net.Http;
using System.Net.Http.Headers;
using System.Threading;
using System.Threading.Tasks;
using CloudAuth;

/// <summary>Answers every request at once with 200 and no body: only the client side is timed.</summary>
sealed class CannedHandler : HttpMessageHandler
{
    protected override Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
    {
        return Task.FromResult(new HttpResponseMessage(HttpStatusCode.OK) { RequestMessage = request });
    }
}

public static class BenchDotnet
{
    static double PerRequestMicros(HttpClient client, string url, int n)
    {
        Stopwatch clock = Stopwatch.StartNew();
        for (int i = 0; i < n; i++)
        {
            using (HttpResponseMessage r = client.GetAsync(url).Result)
            {
                if (r.StatusCode != HttpStatusCode.OK)
                {
                    throw new Exception("GET " + url + ": HTTP " + (int)r.StatusCode);
                }
                r.Content.ReadAsByteArrayAsync().Wait();
            }
        }
        return clock.Elapsed.TotalMilliseconds * 1000.0 / n;
    }

    // One request at a time through client; header, when not null, is set on each request.
    static double CannedMicros(HttpClient client, string url, AuthenticationHeaderValue header, int n)
    {
        Stopwatch clock = Stopwatch.StartNew();
        for (int i = 0; i < n; i++)
        {
            HttpRequestMessage request = new HttpRequestMessage(HttpMethod.Get, url);
            if (header != null)
            {
                request.Headers.Authorization = header;
            }
            using (HttpResponseMessage r = client.SendAsync(request).Result)
            {
                if (r.StatusCode != HttpStatusCode.OK)
                {
                    throw new Exception("canned GET: HTTP " + (int)r.StatusCode);
                }
            }
        }
        return clock.Elapsed.TotalMilliseconds * 1000.0 / n;
    }

    // The handler's own cost, CPU-bound: CloudAuthHandler over CannedHandler with a cached
    // token, against a bare HttpClient over CannedHandler setting a fixed header per request.
    static void Overhead(Session session, string url, string token, bool quick)
    {
        int n = quick ? 5000 : 50000, rounds = quick ? 3 : 9;
        AuthenticationHeaderValue fixedHeader = new AuthenticationHeaderValue("Bearer", token);
        using (HttpClient authorized = new HttpClient(new CloudAuthHandler(session, new CannedHandler())))
        using (HttpClient bare = new HttpClient(new CannedHandler()))
        {
            CannedMicros(authorized, url, null, n / 5); // warm up both (JIT, caches)
            CannedMicros(bare, url, fixedHeader, n / 5);
            List<double> withHandler = new List<double>(), without = new List<double>(), diff = new List<double>();
            for (int round = 0; round < rounds; round++)
            {
                double a = CannedMicros(authorized, url, null, n);
                double b = CannedMicros(bare, url, fixedHeader, n);
                withHandler.Add(a);
                without.Add(b);
                diff.Add(a - b);
            }
            Console.WriteLine("R dotnet.canned.handler.us_per_req.rounds " + Join(withHandler));
            Console.WriteLine("R dotnet.canned.bare.us_per_req.rounds " + Join(without));
            Console.WriteLine("R dotnet.canned.handler.us_per_req " + Median(withHandler).ToString("G6"));
            Console.WriteLine("R dotnet.canned.bare.us_per_req " + Median(without).ToString("G6"));
            // Median of the per-round differences: each pair ran back to back, under the same load.
            Console.WriteLine("R dotnet.canned.overhead_us " + Median(diff).ToString("G6"));
        }
    }

    static string Join(List<double> values)
    {
        return string.Join(",", values.ConvertAll(v => v.ToString("G6")).ToArray());
    }

    static double Median(List<double> values)
    {
        values.Sort();
        return values[values.Count / 2];
    }

    public static int Main()
    {
        string baseUrl = Environment.GetEnvironmentVariable("BENCH_BASE");
        string token = Environment.GetEnvironmentVariable("BENCH_TOKEN");
        bool quick = Environment.GetEnvironmentVariable("BENCH_QUICK") == "1";
        int n = quick ? 500 : 3000, rounds = quick ? 3 : 7;
        string url = baseUrl + "/api/ping";
        using (Session session = new Session(new Dictionary<string, string>
        {
            { "client_id", "bench-client" }, { "client_secret", "bench-secret" },
            { "token_url", baseUrl + "/connect/token" }, { "base_url", baseUrl }, { "proxy", "none" },
        }))
        using (HttpClient authorized = new HttpClient(new CloudAuthHandler(session, new HttpClientHandler { UseProxy = false })))
        using (HttpClient bare = new HttpClient(new HttpClientHandler { UseProxy = false }))
        {
            if (session.GetToken() != token)
            {
                Console.Error.WriteLine("cloudauth got another token than nginx's");
                return 1;
            }
            Overhead(session, url, token, quick);
            if (Environment.GetEnvironmentVariable("BENCH_DOTNET_CANNED_ONLY") == "1")
            {
                return 0;
            }
            bare.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", token);
            PerRequestMicros(authorized, url, n / 5); // warm up both
            PerRequestMicros(bare, url, n / 5);
            List<double> withHandler = new List<double>(), without = new List<double>();
            for (int round = 0; round < rounds; round++)
            {
                withHandler.Add(PerRequestMicros(authorized, url, n));
                without.Add(PerRequestMicros(bare, url, n));
            }
            Console.WriteLine("R dotnet.handler.us_per_req.rounds " + Join(withHandler));
            Console.WriteLine("R dotnet.bare.us_per_req.rounds " + Join(without));
            Console.WriteLine("R dotnet.handler.us_per_req " + Median(withHandler).ToString("G6"));
            Console.WriteLine("R dotnet.bare.us_per_req " + Median(without).ToString("G6"));
        }
        return 0;
    }
}
