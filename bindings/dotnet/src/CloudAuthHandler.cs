using System;
using System.Collections.Generic;
using System.Net;
using System.Net.Http;
using System.Net.Http.Headers;
using System.Threading;
using System.Threading.Tasks;

namespace CloudAuth
{
    /// <summary>
    /// Authorizes ordinary <see cref="HttpClient"/> calls with a cloudauth <see cref="Session"/>:
    /// <c>new HttpClient(new CloudAuthHandler(session))</c>. Every request gets
    /// <c>Authorization: Bearer &lt;token&gt;</c> (replacing any the caller set). On a 401 from
    /// the origin (scheme, host, port) the token was sent to, the handler drops the token (unless
    /// another request already replaced it), takes a fresh one and sends the request once more,
    /// to that origin; the request body is buffered so that it can be resent. A 401 from another
    /// origin, reached by a redirect that carried no token, is returned as is: the token is kept
    /// and goes nowhere else.
    /// </summary>
    /// <remarks>
    /// The handler authorizes every request its HttpClient sends, so use that client for the
    /// API only. It asks the library whether a URL may carry the token, so the rule is the
    /// library's own: no plain http to a non-loopback host unless the session was created with
    /// allow_insecure_http (<see cref="InsecureUrlException"/>, nothing is sent). Redirects are
    /// whatever the inner handler does with them: .NET and Mono drop the Authorization header
    /// when they follow one, and a retry after a 401 starts again from the original URI.
    /// The session is not owned: dispose it yourself, after the HttpClient.
    /// </remarks>
    public sealed class CloudAuthHandler : DelegatingHandler
    {
        private readonly Session session;

        // The last origin the library allowed the token to go to: its verdict depends only on
        // the scheme and host (and the session's fixed allow_insecure_http), so a request to the
        // same origin needs no new check. Replaced whole, never mutated: safe without a lock.
        private volatile AllowedOrigin lastAllowed;

        // The library also rejects URLs over 8 KiB of UTF-8: a URI of at most this many chars
        // stays under that however it is escaped (at most 9 bytes per char, "%XX%XX%XX"), so
        // only longer ones need the library's own check even at an allowed origin.
        private const int MaxCheckFreeUriChars = 900;

        // The header for the last token: the same token reuses it instead of a new one per request.
        private volatile BearerHeader lastHeader;

        private sealed class AllowedOrigin
        {
            internal readonly string Scheme;
            internal readonly string Host;
            internal readonly int Port;

            internal AllowedOrigin(Uri uri)
            {
                Scheme = uri.Scheme;
                Host = uri.Host;
                Port = uri.Port;
            }

            internal bool Matches(Uri uri)
            {
                return uri.Port == Port
                    && string.Equals(uri.Host, Host, StringComparison.Ordinal)
                    && string.Equals(uri.Scheme, Scheme, StringComparison.Ordinal);
            }
        }

        private sealed class BearerHeader
        {
            internal readonly string Token;
            internal readonly AuthenticationHeaderValue Value;

            internal BearerHeader(string token)
            {
                Token = token;
                Value = new AuthenticationHeaderValue("Bearer", token);
            }
        }

        /// <summary>A handler over a new <see cref="HttpClientHandler"/>.</summary>
        public CloudAuthHandler(Session session) : this(session, new HttpClientHandler())
        {
        }

        /// <summary>A handler over <paramref name="innerHandler"/> (which it then owns, as any DelegatingHandler).</summary>
        public CloudAuthHandler(Session session, HttpMessageHandler innerHandler) : base(CheckInner(session, innerHandler))
        {
            this.session = session;
        }

        private CloudAuthHandler(Session session, bool withoutInner)
        {
            if (session == null)
            {
                throw new ArgumentNullException("session");
            }
            this.session = session;
        }

        /// <summary>
        /// A handler whose <c>InnerHandler</c> is not set yet, as <c>IHttpClientFactory</c>'s
        /// <c>AddHttpMessageHandler(() =&gt; CloudAuthHandler.WithoutInnerHandler(session))</c>
        /// requires (the factory sets it). Used alone it cannot send until InnerHandler is set.
        /// </summary>
        public static CloudAuthHandler WithoutInnerHandler(Session session)
        {
            return new CloudAuthHandler(session, true);
        }

        private static HttpMessageHandler CheckInner(Session session, HttpMessageHandler innerHandler)
        {
            if (session == null)
            {
                throw new ArgumentNullException("session");
            }
            if (innerHandler == null)
            {
                throw new ArgumentNullException("innerHandler");
            }
            return innerHandler;
        }

        protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            if (request == null)
            {
                throw new ArgumentNullException("request");
            }
            CheckSecure(request.RequestUri);
            // The token is attached to this URI: only its origin may get it, or reject it.
            Uri target = request.RequestUri;

            // Buffer the body now: a stream can be read only once, and a retry needs it again.
            byte[] content = null;
            List<KeyValuePair<string, IEnumerable<string>>> contentHeaders = null;
            if (request.Content != null)
            {
                content = await request.Content.ReadAsByteArrayAsync().ConfigureAwait(false);
                contentHeaders = new List<KeyValuePair<string, IEnumerable<string>>>(request.Content.Headers);
            }

            // A usable token comes back at once with no thread hop (and no Task); otherwise the
            // fetch is awaited without blocking a thread, and the CancellationToken ends the wait.
            string used = session.TryGetCachedToken()
                ?? await session.GetTokenAsync(cancellationToken).ConfigureAwait(false);
            request.Headers.Authorization = HeaderFor(used);
            HttpResponseMessage response = await base.SendAsync(request, cancellationToken).ConfigureAwait(false);
            if (response.StatusCode != HttpStatusCode.Unauthorized || !AnsweredBy(target, response, request))
            {
                return response;
            }

            // The library drops the token only if it is still the rejected one (atomically), so
            // when several requests get a 401 at once only the first causes a token request.
            session.Invalidate(used);
            string fresh = await session.GetTokenAsync(cancellationToken).ConfigureAwait(false);
            HttpRequestMessage retry = Clone(request, target, content, contentHeaders);
            retry.Headers.Authorization = HeaderFor(fresh);
            response.Dispose();
            return await base.SendAsync(retry, cancellationToken).ConfigureAwait(false);
        }

        private void CheckSecure(Uri uri)
        {
            if (uri == null || !uri.IsAbsoluteUri)
            {
                throw new InvalidOperationException("CloudAuthHandler needs an absolute request URI (set HttpClient.BaseAddress)");
            }
            AllowedOrigin allowed = lastAllowed;
            if (allowed != null && uri.OriginalString.Length <= MaxCheckFreeUriChars && allowed.Matches(uri))
            {
                return;
            }
            session.CheckUrl(uri.AbsoluteUri); // throws when the token may not go there
            lastAllowed = new AllowedOrigin(uri);
        }

        private AuthenticationHeaderValue HeaderFor(string token)
        {
            // The session hands out the same string while the token is unchanged (see
            // TryGetCachedToken), so a reference comparison finds the common case.
            BearerHeader header = lastHeader;
            if (header == null || !ReferenceEquals(header.Token, token))
            {
                header = new BearerHeader(token);
                lastHeader = header;
            }
            return header.Value;
        }

        /// <summary>
        /// Whether the 401 came from the origin of <paramref name="target"/>. The inner handler
        /// follows redirects itself and leaves the URI it ended at in the request; one at another
        /// origin got no token, so its 401 says nothing about the token.
        /// </summary>
        private static bool AnsweredBy(Uri target, HttpResponseMessage response, HttpRequestMessage request)
        {
            HttpRequestMessage answered = response.RequestMessage ?? request;
            Uri last = answered.RequestUri ?? target;
            return last.IsAbsoluteUri
                && string.Equals(target.Scheme, last.Scheme, StringComparison.OrdinalIgnoreCase)
                && string.Equals(target.IdnHost, last.IdnHost, StringComparison.OrdinalIgnoreCase)
                && target.Port == last.Port; // Uri.Port fills in the scheme's default port
        }

        private static HttpRequestMessage Clone(
            HttpRequestMessage request, Uri target, byte[] content, List<KeyValuePair<string, IEnumerable<string>>> contentHeaders)
        {
            HttpRequestMessage clone = new HttpRequestMessage(request.Method, target);
            clone.Version = request.Version;
            foreach (KeyValuePair<string, IEnumerable<string>> header in request.Headers)
            {
                if (!string.Equals(header.Key, "Authorization", StringComparison.OrdinalIgnoreCase))
                {
                    clone.Headers.TryAddWithoutValidation(header.Key, header.Value);
                }
            }
            foreach (KeyValuePair<string, object> property in request.Properties)
            {
                clone.Properties[property.Key] = property.Value;
            }
            if (content != null)
            {
                clone.Content = new ByteArrayContent(content);
                foreach (KeyValuePair<string, IEnumerable<string>> header in contentHeaders)
                {
                    // ByteArrayContent computes its own Content-Length.
                    if (!string.Equals(header.Key, "Content-Length", StringComparison.OrdinalIgnoreCase))
                    {
                        clone.Content.Headers.TryAddWithoutValidation(header.Key, header.Value);
                    }
                }
            }
            return clone;
        }
    }
}
