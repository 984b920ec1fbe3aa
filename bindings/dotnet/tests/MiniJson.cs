using System;
using System.Collections.Generic;
using System.Globalization;
using System.Text;

namespace CloudAuth.Tests
{
    /// <summary>
    /// A small, strict JSON reader for the test's control calls (Mono ships no JSON library
    /// in the packages CI installs). Objects become Dictionary&lt;string, object&gt;, arrays
    /// List&lt;object&gt;, numbers double, plus string, bool and null.
    /// </summary>
    internal sealed class MiniJson
    {
        private readonly string text;
        private int pos;

        private MiniJson(string text)
        {
            this.text = text;
        }

        public static object Parse(string text)
        {
            MiniJson reader = new MiniJson(text);
            object value = reader.Value();
            reader.Space();
            if (reader.pos != text.Length)
            {
                throw reader.Fail("trailing characters");
            }
            return value;
        }

        /// <summary>JSON string literal for <paramref name="s"/>, for building request bodies.</summary>
        public static string Quote(string s)
        {
            StringBuilder sb = new StringBuilder("\"");
            foreach (char c in s)
            {
                switch (c)
                {
                    case '"': sb.Append("\\\""); break;
                    case '\\': sb.Append("\\\\"); break;
                    case '\n': sb.Append("\\n"); break;
                    case '\r': sb.Append("\\r"); break;
                    case '\t': sb.Append("\\t"); break;
                    default:
                        if (c < 0x20)
                        {
                            sb.AppendFormat("\\u{0:x4}", (int)c);
                        }
                        else
                        {
                            sb.Append(c);
                        }
                        break;
                }
            }
            return sb.Append('"').ToString();
        }

        private Exception Fail(string what)
        {
            return new FormatException("JSON: " + what + " at offset " + pos);
        }

        private void Space()
        {
            while (pos < text.Length && (text[pos] == ' ' || text[pos] == '\t' || text[pos] == '\n' || text[pos] == '\r'))
            {
                pos++;
            }
        }

        private object Value()
        {
            Space();
            if (pos >= text.Length)
            {
                throw Fail("unexpected end");
            }
            char c = text[pos];
            if (c == '{') return Object();
            if (c == '[') return Array();
            if (c == '"') return String();
            if (Literal("true")) return true;
            if (Literal("false")) return false;
            if (Literal("null")) return null;
            return Number();
        }

        private bool Literal(string word)
        {
            if (string.CompareOrdinal(text, pos, word, 0, word.Length) == 0)
            {
                pos += word.Length;
                return true;
            }
            return false;
        }

        private Dictionary<string, object> Object()
        {
            Dictionary<string, object> result = new Dictionary<string, object>();
            pos++;
            Space();
            if (pos < text.Length && text[pos] == '}')
            {
                pos++;
                return result;
            }
            while (true)
            {
                Space();
                if (pos >= text.Length || text[pos] != '"')
                {
                    throw Fail("expected a key");
                }
                string key = String();
                Space();
                Expect(':');
                result[key] = Value();
                Space();
                if (pos < text.Length && text[pos] == ',')
                {
                    pos++;
                    continue;
                }
                Expect('}');
                return result;
            }
        }

        private List<object> Array()
        {
            List<object> result = new List<object>();
            pos++;
            Space();
            if (pos < text.Length && text[pos] == ']')
            {
                pos++;
                return result;
            }
            while (true)
            {
                result.Add(Value());
                Space();
                if (pos < text.Length && text[pos] == ',')
                {
                    pos++;
                    continue;
                }
                Expect(']');
                return result;
            }
        }

        private void Expect(char c)
        {
            if (pos >= text.Length || text[pos] != c)
            {
                throw Fail("expected '" + c + "'");
            }
            pos++;
        }

        private string String()
        {
            pos++; // opening quote
            StringBuilder sb = new StringBuilder();
            while (true)
            {
                if (pos >= text.Length)
                {
                    throw Fail("unterminated string");
                }
                char c = text[pos++];
                if (c == '"')
                {
                    return sb.ToString();
                }
                if (c != '\\')
                {
                    sb.Append(c);
                    continue;
                }
                if (pos >= text.Length)
                {
                    throw Fail("unterminated escape");
                }
                char e = text[pos++];
                switch (e)
                {
                    case '"': sb.Append('"'); break;
                    case '\\': sb.Append('\\'); break;
                    case '/': sb.Append('/'); break;
                    case 'b': sb.Append('\b'); break;
                    case 'f': sb.Append('\f'); break;
                    case 'n': sb.Append('\n'); break;
                    case 'r': sb.Append('\r'); break;
                    case 't': sb.Append('\t'); break;
                    case 'u':
                        if (pos + 4 > text.Length)
                        {
                            throw Fail("short \\u escape");
                        }
                        sb.Append((char)int.Parse(text.Substring(pos, 4), NumberStyles.HexNumber, CultureInfo.InvariantCulture));
                        pos += 4;
                        break;
                    default:
                        throw Fail("bad escape");
                }
            }
        }

        private double Number()
        {
            int start = pos;
            while (pos < text.Length && "+-0123456789.eE".IndexOf(text[pos]) >= 0)
            {
                pos++;
            }
            double value;
            if (pos == start || !double.TryParse(text.Substring(start, pos - start), NumberStyles.Float, CultureInfo.InvariantCulture, out value))
            {
                throw Fail("bad value");
            }
            return value;
        }
    }
}
