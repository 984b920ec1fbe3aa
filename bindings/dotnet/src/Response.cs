using System;
using System.Collections;
using System.Collections.Generic;
using System.Runtime.InteropServices;

namespace CloudAuth
{
    /// <summary>
    /// A complete HTTP response, copied out of the native <c>cloudauth_response</c> (which is
    /// freed before <see cref="Session.Send"/> returns), so there is nothing to dispose.
    /// Immutable apart from the <see cref="Body"/> array, which is the caller's to keep.
    /// </summary>
    public sealed class Response
    {
        private readonly int status;
        private readonly byte[] body;
        private readonly ResponseHeaders headers;

        private Response(int status, byte[] body, ResponseHeaders headers)
        {
            this.status = status;
            this.body = body;
            this.headers = headers;
        }

        /// <summary>The HTTP status code, e.g. 200 or 404.</summary>
        public int Status
        {
            get { return status; }
        }

        /// <summary>True for a 2xx status.</summary>
        public bool IsSuccessStatusCode
        {
            get { return status >= 200 && status <= 299; }
        }

        /// <summary>The body, byte for byte (may be empty, never null).</summary>
        public byte[] Body
        {
            get { return body; }
        }

        /// <summary>The body decoded as UTF-8 (invalid bytes become U+FFFD).</summary>
        public string Text
        {
            get { return Utf8.Decode(body, body.Length); }
        }

        /// <summary>The response headers in the order received, looked up case-insensitively.</summary>
        public ResponseHeaders Headers
        {
            get { return headers; }
        }

        /// <summary>The first value of header <paramref name="name"/> (any case), or null when absent.</summary>
        public string GetHeader(string name)
        {
            return headers[name];
        }

        internal static Response Read(ResponseHandle response)
        {
            int status = NativeMethods.cloudauth_response_status(response);

            UIntPtr length;
            IntPtr data = NativeMethods.cloudauth_response_body(response, out length);
            ulong count = length.ToUInt64();
            if (count > int.MaxValue)
            {
                throw new TooLargeException("the response body (" + count + " bytes) does not fit in a .NET byte array");
            }
            byte[] body = new byte[(int)count];
            if (count > 0)
            {
                Marshal.Copy(data, body, 0, (int)count);
            }

            bool added = false;
            try
            {
                response.DangerousAddRef(ref added);
                return new Response(status, body, ReadHeaders(response.DangerousGetHandle()));
            }
            finally
            {
                if (added)
                {
                    response.DangerousRelease();
                }
            }
        }

        /// <summary>The status and headers of a response the library lends to a head callback; the body is empty.</summary>
        internal static Response ReadHead(IntPtr head)
        {
            return new Response(NativeMethods.cloudauth_response_status_lent(head), new byte[0], ReadHeaders(head));
        }

        private static ResponseHeaders ReadHeaders(IntPtr response)
        {
            ulong n = NativeMethods.cloudauth_response_header_count(response).ToUInt64();
            List<KeyValuePair<string, string>> list = new List<KeyValuePair<string, string>>((int)Math.Min(n, 1024));
            for (ulong i = 0; i < n; i++)
            {
                IntPtr name;
                IntPtr value;
                Ensure.Success(
                    NativeMethods.cloudauth_response_header_at(response, (UIntPtr)i, out name, out value),
                    "cloudauth_response_header_at");
                list.Add(new KeyValuePair<string, string>(Utf8.FromNative(name), Utf8.FromNative(value)));
            }
            return new ResponseHeaders(list);
        }
    }

    /// <summary>
    /// Response headers: every (lower-case name, value) pair in the order received, a repeated
    /// header once per value. Names are matched case-insensitively.
    /// </summary>
    public sealed class ResponseHeaders : IEnumerable<KeyValuePair<string, string>>
    {
        private readonly List<KeyValuePair<string, string>> headers;

        internal ResponseHeaders(List<KeyValuePair<string, string>> headers)
        {
            this.headers = headers;
        }

        /// <summary>The number of (name, value) pairs.</summary>
        public int Count
        {
            get { return headers.Count; }
        }

        /// <summary>The first value of header <paramref name="name"/> (any case), or null when absent.</summary>
        public string this[string name]
        {
            get
            {
                if (name == null)
                {
                    throw new ArgumentNullException("name");
                }
                foreach (KeyValuePair<string, string> header in headers)
                {
                    if (string.Equals(header.Key, name, StringComparison.OrdinalIgnoreCase))
                    {
                        return header.Value;
                    }
                }
                return null;
            }
        }

        /// <summary>Every value of header <paramref name="name"/> (any case), in order; empty when absent.</summary>
        public IList<string> GetValues(string name)
        {
            if (name == null)
            {
                throw new ArgumentNullException("name");
            }
            List<string> values = new List<string>();
            foreach (KeyValuePair<string, string> header in headers)
            {
                if (string.Equals(header.Key, name, StringComparison.OrdinalIgnoreCase))
                {
                    values.Add(header.Value);
                }
            }
            return values.AsReadOnly();
        }

        /// <summary>Whether the response has header <paramref name="name"/> (any case).</summary>
        public bool Contains(string name)
        {
            return this[name] != null;
        }

        public IEnumerator<KeyValuePair<string, string>> GetEnumerator()
        {
            return headers.GetEnumerator();
        }

        IEnumerator IEnumerable.GetEnumerator()
        {
            return GetEnumerator();
        }
    }
}
