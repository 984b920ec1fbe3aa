// cloudauth from C#: get a token, submit an image for OCR, poll the task, print the text.
//
// The same flow as examples/c/demo.c, against the Aspose-compatible API at $STANDIN_URL (the
// local stand-in, tests/standin/server.py). Prints the token's length, never the token.
//
//   mcs -r:CloudAuth.dll -out:OcrDemo.exe examples/dotnet/OcrDemo.cs
//   STANDIN_URL=http://127.0.0.1:8080 LD_LIBRARY_PATH=target/release mono OcrDemo.exe

using System;
using System.Collections.Generic;
using System.Globalization;
using System.Text;
using System.Threading;
using CloudAuth;

public static class OcrDemo
{
    // A 1x1 transparent PNG: the stand-in only counts its bytes.
    private const string ImageBase64 =
        "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==";
    private const int MaxPolls = 50;

    public static int Main()
    {
        string baseUrl = Environment.GetEnvironmentVariable("STANDIN_URL");
        if (string.IsNullOrEmpty(baseUrl))
        {
            Console.Error.WriteLine("OcrDemo: set STANDIN_URL (e.g. run it under tests/standin/with_server.sh)");
            return 2;
        }
        baseUrl = baseUrl.TrimEnd('/');

        Dictionary<string, string> options = new Dictionary<string, string>
        {
            { "client_id", Environment.GetEnvironmentVariable("CLOUDAUTH_CLIENT_ID") ?? "demo-client" },
            { "client_secret", Environment.GetEnvironmentVariable("CLOUDAUTH_CLIENT_SECRET") ?? "demo-secret" },
            { "token_url", baseUrl + "/connect/token" },
            { "base_url", baseUrl },
            { "timeout_ms", "10000" },
        };
        try
        {
            using (Session session = new Session(options))
            {
                Console.WriteLine("cloudauth " + Library.Version + ": token of " + session.GetToken().Length + " characters");

                byte[] image = Convert.FromBase64String(ImageBase64);
                string request = "{\"image\": \"" + Convert.ToBase64String(image) + "\", \"settings\": {\"language\": \"English\"}}";
                Response submitted = session.Send(
                    "POST",
                    "/v5.0/ocr/RecognizeImage",
                    new Dictionary<string, string> { { "Content-Type", "application/json" } },
                    Encoding.UTF8.GetBytes(request));
                if (!submitted.IsSuccessStatusCode)
                {
                    Console.Error.WriteLine("OcrDemo: submit failed with HTTP " + submitted.Status + ": " + submitted.Text);
                    return 1;
                }
                string taskId = submitted.Text.Trim();
                Console.WriteLine("submitted " + image.Length + " image bytes: task " + taskId);

                for (int attempt = 1; attempt <= MaxPolls; attempt++)
                {
                    Response poll = session.Send("GET", "/v5.0/ocr/RecognizeImage?id=" + Uri.EscapeDataString(taskId));
                    if (!poll.IsSuccessStatusCode)
                    {
                        Console.Error.WriteLine("OcrDemo: poll failed with HTTP " + poll.Status + ": " + poll.Text);
                        return 1;
                    }
                    Dictionary<string, object> task = Json.Parse(poll.Text) as Dictionary<string, object>;
                    if (task == null)
                    {
                        throw new FormatException("the task is not a JSON object");
                    }
                    string status = Field(task, "taskStatus") as string;
                    Console.WriteLine("poll " + attempt + ": " + status);
                    if (status == "Completed")
                    {
                        foreach (object item in Field(task, "results") as List<object> ?? new List<object>())
                        {
                            Dictionary<string, object> result = item as Dictionary<string, object>;
                            string data = result == null ? null : Field(result, "data") as string;
                            if (data == null)
                            {
                                throw new FormatException("a result without text data");
                            }
                            Console.WriteLine("recognized text: " + Encoding.UTF8.GetString(Convert.FromBase64String(data)));
                        }
                        return 0;
                    }
                    if (status != "Pending" && status != "Processing")
                    {
                        Console.Error.WriteLine("OcrDemo: task ended as " + status + ": " + Field(task, "error"));
                        return 1;
                    }
                    Thread.Sleep(100);
                }
                Console.Error.WriteLine("OcrDemo: task not completed after " + MaxPolls + " polls");
                return 1;
            }
        }
        catch (CloudAuthException e)
        {
            // The message says which step failed and why; it never contains the secret or a token.
            Console.Error.WriteLine("OcrDemo: " + e.Code + ": " + e.Message);
            return 1;
        }
        catch (FormatException e)
        {
            Console.Error.WriteLine("OcrDemo: unexpected answer: " + e.Message);
            return 1;
        }
    }

    private static object Field(Dictionary<string, object> obj, string name)
    {
        object value;
        return obj.TryGetValue(name, out value) ? value : null;
    }

    /// <summary>
    /// Just enough JSON for this demo (Mono's default install has no JSON library): objects become
    /// Dictionary&lt;string, object&gt;, arrays List&lt;object&gt;, numbers double.
    /// </summary>
    private sealed class Json
    {
        private readonly string s;
        private int i;

        private Json(string s)
        {
            this.s = s;
        }

        public static object Parse(string text)
        {
            Json p = new Json(text);
            object value = p.Value();
            p.Skip();
            if (p.i != text.Length)
            {
                throw new FormatException("trailing characters in JSON");
            }
            return value;
        }

        private void Skip()
        {
            while (i < s.Length && char.IsWhiteSpace(s[i]))
            {
                i++;
            }
        }

        private char Next()
        {
            Skip();
            if (i >= s.Length)
            {
                throw new FormatException("JSON ends early");
            }
            return s[i];
        }

        private void Expect(char c)
        {
            if (Next() != c)
            {
                throw new FormatException("expected '" + c + "' at offset " + i + " of the JSON");
            }
            i++;
        }

        private object Value()
        {
            char c = Next();
            if (c == '{')
            {
                Dictionary<string, object> obj = new Dictionary<string, object>();
                i++;
                if (Next() == '}') { i++; return obj; }
                do
                {
                    string key = String();
                    Expect(':');
                    obj[key] = Value();
                }
                while (Comma());
                Expect('}');
                return obj;
            }
            if (c == '[')
            {
                List<object> list = new List<object>();
                i++;
                if (Next() == ']') { i++; return list; }
                do
                {
                    list.Add(Value());
                }
                while (Comma());
                Expect(']');
                return list;
            }
            if (c == '"') return String();
            foreach (string word in new[] { "true", "false", "null" })
            {
                if (string.CompareOrdinal(s, i, word, 0, word.Length) == 0)
                {
                    i += word.Length;
                    return word == "null" ? null : (object)(word == "true");
                }
            }
            int start = i;
            while (i < s.Length && "+-0123456789.eE".IndexOf(s[i]) >= 0) i++;
            double number;
            if (!double.TryParse(s.Substring(start, i - start), NumberStyles.Float, CultureInfo.InvariantCulture, out number))
            {
                throw new FormatException("bad JSON value at offset " + start);
            }
            return number;
        }

        private bool Comma()
        {
            if (Next() != ',') return false;
            i++;
            return true;
        }

        private string String()
        {
            Expect('"');
            StringBuilder sb = new StringBuilder();
            while (true)
            {
                if (i >= s.Length) throw new FormatException("unterminated JSON string");
                char c = s[i++];
                if (c == '"') return sb.ToString();
                if (c != '\\') { sb.Append(c); continue; }
                if (i >= s.Length) throw new FormatException("unterminated JSON escape");
                char e = s[i++];
                switch (e)
                {
                    case 'b': sb.Append('\b'); break;
                    case 'f': sb.Append('\f'); break;
                    case 'n': sb.Append('\n'); break;
                    case 'r': sb.Append('\r'); break;
                    case 't': sb.Append('\t'); break;
                    case 'u':
                        if (i + 4 > s.Length) throw new FormatException("short \\u escape in JSON");
                        sb.Append((char)int.Parse(s.Substring(i, 4), NumberStyles.HexNumber, CultureInfo.InvariantCulture));
                        i += 4;
                        break;
                    default: sb.Append(e); break; // \" \\ \/
                }
            }
        }
    }
}
