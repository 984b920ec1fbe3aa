// .NET on Mono: HttpClient with CloudAuthHandler against a bare HttpClient sending a fixed
// Authorization header, same nginx endpoint, one request at a time, interleaved rounds.
// Prints "R dotnet.* value" lines for bench/report.py. Run by bench/run.sh.
using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Net;
using System.Net.Http;
using System.Net.Http.Headers;
using CloudAuth;

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
            bare.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", token);
            PerRequestMicros(authorized, url, n / 5); // warm up both
            PerRequestMicros(bare, url, n / 5);
            List<double> withHandler = new List<double>(), without = new List<double>();
            for (int round = 0; round < rounds; round++)
            {
                withHandler.Add(PerRequestMicros(authorized, url, n));
                without.Add(PerRequestMicros(bare, url, n));
            }
            Console.WriteLine("R dotnet.handler.us_per_req.rounds " + string.Join(",", withHandler.ConvertAll(v => v.ToString("G6")).ToArray()));
            Console.WriteLine("R dotnet.bare.us_per_req.rounds " + string.Join(",", without.ConvertAll(v => v.ToString("G6")).ToArray()));
            Console.WriteLine("R dotnet.handler.us_per_req " + Median(withHandler).ToString("G6"));
            Console.WriteLine("R dotnet.bare.us_per_req " + Median(without).ToString("G6"));
        }
        return 0;
    }
}
