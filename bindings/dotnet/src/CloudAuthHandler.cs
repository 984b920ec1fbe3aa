using System;
using System.Collections.Generic;
using System.IO;
using System.Net;
using System.Net.Http;
using System.Net.Http.Headers;
using System.Threading;
using System.Threading.Tasks;

namespace CloudAuth
{
    /// <summary>
    /// Authorizes ordinary <see cref="HttpClient"/> calls with a cloudauth <see cref="Session"/>:
    /// <c>new HttpClient(new CloudAuthHandler(session))</c>. Every request for the session's
    /// origin (scheme, host and port of its base_url, <see cref="Session.Origin"/>) gets
    /// <c>Authorization: Bearer &lt;token&gt;</c> (replacing any the caller set), also on
    /// redirects within that origin and on no hop leaving it; a request for any other origin is
    /// sent as the caller made it, without the token (redirects still followed). A 401
    /// counts as the server rejecting the token only when the request that got it (the last hop)
    /// carried the token: then the handler always drops that token (unless another request
    /// already replaced it) and, when the body can be sent again, takes a fresh one and sends the
    /// request once more from its start. A <see cref="StreamContent"/> body is streamed as it is
    /// read, never held whole (chunked when its length is unknown), and rewound to where it
    /// started for a resend (a 401, a 307/308) when its stream can seek; one that cannot seek is
    /// not resent: the 401 (or the redirect) is the answer. Other content is buffered first, so it
    /// can always be resent. A 401 to the resend drops its token too and is returned. Any other
    /// 401 is returned as is and no token is dropped (docs/adapters.md: the rule every binding's
    /// adapter follows). Response bodies are the inner handler's, untouched: with
    /// <see cref="HttpCompletionOption.ResponseHeadersRead"/> the content streams.
    /// </summary>
    /// <remarks>
    /// It asks the library whether a URL may carry the token, so the rule is the
    /// library's own: no plain http to a non-loopback host unless the session was created with
    /// allow_insecure_http (<see cref="InsecureUrlException"/>, nothing is sent). Redirects: over
    /// an <see cref="HttpClientHandler"/> that follows them (the default), the handler turns that
    /// off before its first request and follows them itself, as HttpClientHandler would (its
    /// MaxAutomaticRedirections, 303 and POST-on-301/302 become GET, no https-to-http hop), so
    /// that the token can go along within the origin; any other inner handler's redirects are its
    /// own business (.NET and Mono drop Authorization on them, so their 401s drop no token).
    /// The session is not owned: dispose it yourself, after the HttpClient.
    /// </remarks>
    public sealed class CloudAuthHandler : DelegatingHandler
    {
        private readonly Session session;

        // The session's origin, the only one that gets the token (base_url's, from the library):
        // read on the first request, so that making a handler needs no live session yet.
        private volatile Uri origin;

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
            Uri target = request.RequestUri;
            if (target == null || !target.IsAbsoluteUri)
            {
                throw new InvalidOperationException("CloudAuthHandler needs an absolute request URI (set HttpClient.BaseAddress)");
            }
            bool ours = SameOrigin(Origin(), target);
            if (ours)
            {
                CheckSecure(target);
            }

            RequestBody content = await RequestBody.Of(request).ConfigureAwait(false);

            if (!ours)
            {
                // Another origin: no token, on this hop or any; its 401 is not about our token.
                Sent plain = await SendFollowing(request, null, content, cancellationToken)
                    .ConfigureAwait(false);
                return plain.Response;
            }

            // A usable token comes back at once with no thread hop (and no Task); otherwise the
            // fetch is awaited without blocking a thread, and the CancellationToken ends the wait.
            string used = session.TryGetCachedToken()
                ?? await session.GetTokenAsync(cancellationToken).ConfigureAwait(false);
            Sent sent = await SendFollowing(request, HeaderFor(used), content, cancellationToken)
                .ConfigureAwait(false);
            if (sent.Response.StatusCode != HttpStatusCode.Unauthorized || !sent.CarriedToken)
            {
                return sent.Response;
            }

            // The request that got the 401 carried this token: the server rejected it. The
            // library drops the token only if it is still the rejected one (atomically), so
            // when several requests get a 401 at once only the first causes a token request.
            // Dropped whether or not the request can be sent again.
            session.Invalidate(used);
            if (content != null && !content.Rewind())
            {
                return sent.Response; // a stream that cannot seek: the 401 is the answer
            }
            string fresh = await session.GetTokenAsync(cancellationToken).ConfigureAwait(false);
            HttpRequestMessage retry = Clone(request, request.Method, target, content);
            sent.Response.Dispose();
            sent = await SendFollowing(retry, HeaderFor(fresh), content, cancellationToken)
                .ConfigureAwait(false);
            if (sent.Response.StatusCode == HttpStatusCode.Unauthorized && sent.CarriedToken)
            {
                session.Invalidate(fresh); // not resent again, but that token is dropped too
            }
            return sent.Response;
        }

        private sealed class Sent
        {
            internal HttpResponseMessage Response;
            // Whether the request that got Response (the last hop) went out with the token.
            internal bool CarriedToken;
        }

        /// <summary>
        /// Sends <paramref name="first"/> with <paramref name="bearer"/> (null: as the caller
        /// made it), following redirects here when the inner handler would have (so that hops
        /// within the session's origin carry the token and hops elsewhere do not), and says
        /// whether the last hop carried the token.
        /// </summary>
        private async Task<Sent> SendFollowing(
            HttpRequestMessage first, AuthenticationHeaderValue bearer, RequestBody content, CancellationToken cancellationToken)
        {
            int hops = FollowedHops();
            HttpRequestMessage message = first;
            if (bearer != null)
            {
                message.Headers.Authorization = bearer;
            }
            for (int hop = 0; ; hop++)
            {
                Uri sentTo = message.RequestUri;
                HttpResponseMessage response = await base.SendAsync(message, cancellationToken).ConfigureAwait(false);
                Uri next = hop < hops ? RedirectTarget(response, sentTo) : null;
                if (next == null)
                {
                    // An inner handler that followed a redirect itself dropped Authorization
                    // (.NET and Mono do on every redirect): the answer then says nothing of the token.
                    HttpRequestMessage answered = response.RequestMessage ?? message;
                    bool redirectedInside = answered.RequestUri != null && answered.RequestUri != sentTo;
                    return new Sent
                    {
                        Response = response,
                        CarriedToken = bearer != null && !redirectedInside && Equals(message.Headers.Authorization, bearer),
                    };
                }
                HttpMethod method = RedirectMethod((int)response.StatusCode, message.Method);
                bool keepBody = method == message.Method && message.Content != null && content != null;
                if (keepBody && !content.Rewind())
                {
                    // A 307/308 keeps the body, and a stream that cannot seek cannot be sent
                    // again: the redirect is the answer.
                    return new Sent { Response = response, CarriedToken = false };
                }
                message = Clone(message, method, next, keepBody ? content : null);
                // The token goes only to the session's origin (Clone dropped any other header).
                message.Headers.Authorization = bearer != null && SameOrigin(Origin(), next) ? bearer : null;
                response.Dispose();
            }
        }

        // 0 until known; then 1 + the hops this handler follows (0: the inner handler's business).
        private int followState;

        /// <summary>
        /// How many redirects this handler follows: as many as an inner HttpClientHandler would,
        /// whose own following is turned off (before its first request) so that the token can
        /// go along within the origin; 0 for any other inner handler.
        /// </summary>
        private int FollowedHops()
        {
            int state = Volatile.Read(ref followState);
            if (state != 0)
            {
                return state - 1;
            }
            int hops = 0;
            HttpClientHandler inner = InnerHandler as HttpClientHandler;
            if (inner != null)
            {
                lock (inner)
                {
                    try
                    {
                        if (inner.AllowAutoRedirect)
                        {
                            int max = inner.MaxAutomaticRedirections;
                            inner.AllowAutoRedirect = false;
                            hops = max;
                        }
                        else if (Volatile.Read(ref followState) != 0)
                        {
                            return Volatile.Read(ref followState) - 1;
                        }
                    }
                    catch (InvalidOperationException)
                    {
                        // Already started by a request that did not come through here.
                    }
                    Volatile.Write(ref followState, hops + 1);
                }
            }
            else
            {
                Volatile.Write(ref followState, 1);
            }
            return hops;
        }

        /// <summary>Where a redirect answer sends the request next, as HttpClientHandler decides; null if nowhere.</summary>
        private static Uri RedirectTarget(HttpResponseMessage response, Uri from)
        {
            int status = (int)response.StatusCode;
            if (status != 301 && status != 302 && status != 303 && status != 307 && status != 308)
            {
                return null;
            }
            Uri location = response.Headers.Location;
            if (location == null)
            {
                return null;
            }
            Uri next = location.IsAbsoluteUri ? location : new Uri(from, location);
            bool http = next.Scheme == Uri.UriSchemeHttp || next.Scheme == Uri.UriSchemeHttps;
            // No downgrade from https to http, as HttpClientHandler.
            if (!http || (from.Scheme == Uri.UriSchemeHttps && next.Scheme == Uri.UriSchemeHttp))
            {
                return null;
            }
            return next;
        }

        private static HttpMethod RedirectMethod(int status, HttpMethod method)
        {
            if (status == 303 && method != HttpMethod.Head)
            {
                return HttpMethod.Get;
            }
            if ((status == 301 || status == 302) && method == HttpMethod.Post)
            {
                return HttpMethod.Get;
            }
            return method;
        }

        private Uri Origin()
        {
            Uri known = origin;
            if (known == null)
            {
                known = new Uri(session.Origin); // the same value every time: a race is harmless
                origin = known;
            }
            return known;
        }

        private void CheckSecure(Uri uri)
        {
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

        private static bool SameOrigin(Uri target, Uri other)
        {
            return other.IsAbsoluteUri
                && string.Equals(target.Scheme, other.Scheme, StringComparison.OrdinalIgnoreCase)
                && string.Equals(target.IdnHost, other.IdnHost, StringComparison.OrdinalIgnoreCase)
                && target.Port == other.Port; // Uri.Port fills in the scheme's default port
        }

        private static HttpRequestMessage Clone(HttpRequestMessage request, HttpMethod method, Uri target, RequestBody content)
        {
            HttpRequestMessage clone = new HttpRequestMessage(method, target);
            clone.Version = request.Version;
            foreach (KeyValuePair<string, IEnumerable<string>> header in request.Headers)
            {
                // Transfer-Encoding belongs to the body: set below when there is one.
                if (!string.Equals(header.Key, "Authorization", StringComparison.OrdinalIgnoreCase)
                    && !string.Equals(header.Key, "Transfer-Encoding", StringComparison.OrdinalIgnoreCase))
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
                content.Attach(clone, false);
            }
            return clone;
        }

        /// <summary>
        /// A request's body as the handler sends it, once or again: a <see cref="StreamContent"/>
        /// is streamed from its stream as it is read (never held whole), rewound to where it
        /// started for a resend when the stream can seek, and never resent when it cannot; any
        /// other content is buffered first (as bytes it can always be sent again).
        /// </summary>
        private sealed class RequestBody
        {
            private readonly byte[] bytes;
            private readonly HttpContent original;
            private readonly Stream stream;
            private readonly long start;
            private readonly long? length;
            private readonly List<KeyValuePair<string, IEnumerable<string>>> headers;
            private bool started;

            private RequestBody(byte[] bytes, HttpContent original, Stream stream, long? length)
            {
                this.bytes = bytes;
                this.original = original;
                this.stream = stream;
                this.length = length;
                headers = new List<KeyValuePair<string, IEnumerable<string>>>(original.Headers);
                start = stream != null && stream.CanSeek ? stream.Position : 0;
            }

            /// <summary>
            /// The body of <paramref name="request"/> (null: none). A StreamContent is replaced on
            /// the request by one that reads the same stream and can be rewound; its length is
            /// Content-Length when known (given, or the seekable stream's rest), else it goes chunked.
            /// </summary>
            internal static async Task<RequestBody> Of(HttpRequestMessage request)
            {
                HttpContent content = request.Content;
                if (content == null)
                {
                    return null;
                }
                if (!(content is StreamContent))
                {
                    return new RequestBody(await content.ReadAsByteArrayAsync().ConfigureAwait(false), content, null, null);
                }
                long? length = content.Headers.ContentLength; // StreamContent computes it when the stream can seek
                Stream stream = await content.ReadAsStreamAsync().ConfigureAwait(false);
                RequestBody body = new RequestBody(null, content, stream, length);
                body.Attach(request, true);
                return body;
            }

            /// <summary>Puts the body back at its start for a resend; false when it cannot be sent again.</summary>
            internal bool Rewind()
            {
                if (bytes != null || !started)
                {
                    return true;
                }
                if (!stream.CanSeek)
                {
                    return false;
                }
                try
                {
                    stream.Seek(start, SeekOrigin.Begin);
                    return true;
                }
                catch (Exception e) when (e is IOException || e is NotSupportedException || e is ObjectDisposedException)
                {
                    return false;
                }
            }

            /// <summary>Sets this body as <paramref name="message"/>'s content, with the original content headers.</summary>
            internal void Attach(HttpRequestMessage message, bool ownsOriginal)
            {
                HttpContent content = bytes != null ? (HttpContent)new ByteArrayContent(bytes) : new SourceContent(this, ownsOriginal);
                foreach (KeyValuePair<string, IEnumerable<string>> header in headers)
                {
                    // The new content gives its own Content-Length.
                    if (!string.Equals(header.Key, "Content-Length", StringComparison.OrdinalIgnoreCase))
                    {
                        content.Headers.TryAddWithoutValidation(header.Key, header.Value);
                    }
                }
                message.Content = content;
                if (bytes == null && length == null)
                {
                    message.Headers.TransferEncodingChunked = true; // otherwise Mono would buffer it whole
                }
            }

            /// <summary>The stream read from where it stands (the start, or where Rewind put it).</summary>
            private sealed class SourceContent : HttpContent
            {
                private readonly RequestBody body;
                private readonly bool ownsOriginal;

                internal SourceContent(RequestBody body, bool ownsOriginal)
                {
                    this.body = body;
                    this.ownsOriginal = ownsOriginal;
                }

                protected override Task SerializeToStreamAsync(Stream target, TransportContext context)
                {
                    body.started = true;
                    return body.stream.CopyToAsync(target, 64 * 1024);
                }

                protected override bool TryComputeLength(out long length)
                {
                    length = body.length ?? 0;
                    return body.length.HasValue;
                }

                protected override void Dispose(bool disposing)
                {
                    // The caller's request holds this one in place of its StreamContent: whoever
                    // disposes the request's content (HttpClient does) disposes the original.
                    if (disposing && ownsOriginal)
                    {
                        body.original.Dispose();
                    }
                    base.Dispose(disposing);
                }
            }
        }
    }
}
