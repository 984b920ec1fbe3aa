using System;
using System.Collections.Generic;
using System.Net.Http;
using System.Reflection;
using System.Text;

namespace CloudAuth.Tests
{
    /// <summary>Marks a test method: public static void, no parameters.</summary>
    [AttributeUsage(AttributeTargets.Method)]
    internal sealed class TestAttribute : Attribute
    {
    }

    internal sealed class AssertionException : Exception
    {
        public AssertionException(string message) : base(message)
        {
        }
    }

    internal static class Assert
    {
        public static void True(bool condition, string what)
        {
            if (!condition)
            {
                throw new AssertionException("expected: " + what);
            }
        }

        public static void Equal<T>(T expected, T actual, string what)
        {
            if (!EqualityComparer<T>.Default.Equals(expected, actual))
            {
                throw new AssertionException(what + ": expected <" + expected + ">, got <" + actual + ">");
            }
        }

        public static void Bytes(byte[] expected, byte[] actual, string what)
        {
            if (actual == null)
            {
                throw new AssertionException(what + ": got null");
            }
            if (expected.Length != actual.Length)
            {
                throw new AssertionException(what + ": expected " + expected.Length + " bytes, got " + actual.Length);
            }
            for (int i = 0; i < expected.Length; i++)
            {
                if (expected[i] != actual[i])
                {
                    throw new AssertionException(what + ": first difference at byte " + i);
                }
            }
        }

        public static void Contains(string needle, string haystack, string what)
        {
            if (haystack == null || haystack.IndexOf(needle, StringComparison.Ordinal) < 0)
            {
                throw new AssertionException(what + ": expected to contain '" + needle + "', got '" + haystack + "'");
            }
        }

        /// <summary>Never echoes <paramref name="secret"/> itself into a failure message.</summary>
        public static void Lacks(string secret, string text, string what)
        {
            if (text != null && text.IndexOf(secret, StringComparison.Ordinal) >= 0)
            {
                throw new AssertionException(what + " contains a secret (" + secret.Length + " characters)");
            }
        }

        /// <summary>
        /// Runs <paramref name="action"/>, which must throw exactly a <typeparamref name="T"/>
        /// (not a subclass of it, not an unrelated type). Returns it.
        /// </summary>
        public static T Throws<T>(Action action, string what) where T : Exception
        {
            try
            {
                action();
            }
            catch (Exception e)
            {
                if (e.GetType() == typeof(T))
                {
                    return (T)e;
                }
                throw new AssertionException(what + ": expected " + typeof(T).Name + ", got " + e.GetType().Name + ": " + e.Message);
            }
            throw new AssertionException(what + ": expected " + typeof(T).Name + ", nothing was thrown");
        }
    }

    /// <summary>
    /// The stand-in server's control API (tests/standin/PROTOCOL.md), over a plain HttpClient
    /// without cloudauth and without any proxy.
    /// </summary>
    internal sealed class Standin
    {
        private static readonly HttpClient Client = new HttpClient(new HttpClientHandler { UseProxy = false })
        {
            Timeout = TimeSpan.FromSeconds(30),
        };

        public Standin(string url)
        {
            Url = url.TrimEnd('/');
        }

        public string Url { get; private set; }

        public string TokenUrl
        {
            get { return Url + "/connect/token"; }
        }

        public void Reset()
        {
            Post("/_control/reset", "");
        }

        public void Revoke()
        {
            Post("/_control/revoke", "");
        }

        /// <summary>POST /_control/config with a JSON object written by the caller.</summary>
        public void Configure(string json)
        {
            Post("/_control/config", json);
        }

        public Dictionary<string, object> Stats()
        {
            using (HttpResponseMessage r = Client.GetAsync(Url + "/_control/stats").GetAwaiter().GetResult())
            {
                string body = r.Content.ReadAsStringAsync().GetAwaiter().GetResult();
                Assert.Equal(200, (int)r.StatusCode, "GET /_control/stats status");
                return (Dictionary<string, object>)MiniJson.Parse(body);
            }
        }

        public int Stat(string name)
        {
            return (int)(double)Stats()[name];
        }

        /// <summary>The paths of the Bearer-checked requests logged in api_log that carried an Authorization header.</summary>
        public List<string> PathsWithAuthorization()
        {
            List<string> paths = new List<string>();
            foreach (object entry in (List<object>)Stats()["api_log"])
            {
                Dictionary<string, object> e = (Dictionary<string, object>)entry;
                if (((Dictionary<string, object>)e["headers"]).ContainsKey("authorization"))
                {
                    paths.Add((string)e["path"]);
                }
            }
            return paths;
        }

        private void Post(string path, string json)
        {
            using (StringContent content = new StringContent(json, Encoding.UTF8, "application/json"))
            using (HttpResponseMessage r = Client.PostAsync(Url + path, content).GetAwaiter().GetResult())
            {
                if ((int)r.StatusCode != 200)
                {
                    string body = r.Content.ReadAsStringAsync().GetAwaiter().GetResult();
                    throw new InvalidOperationException("POST " + path + ": " + (int)r.StatusCode + " " + body);
                }
            }
        }
    }

    /// <summary>Runs every [Test] method of a class in declaration order; prints one line each.</summary>
    internal static class Runner
    {
        public static int Run(Type tests, Action beforeEach, string filter)
        {
            int passed = 0;
            int failed = 0;
            MethodInfo[] methods = tests.GetMethods(BindingFlags.Public | BindingFlags.Static | BindingFlags.DeclaredOnly);
            Array.Sort(methods, (a, b) => a.MetadataToken.CompareTo(b.MetadataToken));
            foreach (MethodInfo method in methods)
            {
                if (method.GetCustomAttributes(typeof(TestAttribute), false).Length == 0)
                {
                    continue;
                }
                if (filter != null && method.Name.IndexOf(filter, StringComparison.OrdinalIgnoreCase) < 0)
                {
                    continue;
                }
                try
                {
                    beforeEach();
                    method.Invoke(null, null);
                    passed++;
                    Console.WriteLine("PASS " + method.Name);
                }
                catch (Exception e)
                {
                    Exception cause = e is TargetInvocationException && e.InnerException != null ? e.InnerException : e;
                    failed++;
                    Console.WriteLine("FAIL " + method.Name + ": " + cause.GetType().Name + ": " + cause.Message);
                    if (!(cause is AssertionException))
                    {
                        Console.WriteLine(cause.StackTrace);
                    }
                }
            }
            Console.WriteLine(passed + " passed, " + failed + " failed");
            return failed == 0 && passed > 0 ? 0 : 1;
        }
    }
}
