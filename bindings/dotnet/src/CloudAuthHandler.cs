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
    /// <c>Authorization: Bearer &lt;token&gt;</c> (replacing any the caller set). On a 401 the
    /// handler drops the token (unless another request already replaced it), takes a fresh one
    /// and sends the request once more; the request body is buffered so that it can be resent.
    /// </summary>
    /// <remarks>
    /// The handler authorizes every request its HttpClient sends, so use that client for the
    /// API only. Like the library, it refuses to put a token on plain http to a non-loopback
    /// host unless the session was created with allow_insecure_http=true
    /// (<see cref="InsecureUrlException"/>, nothing is sent). Redirects are whatever the inner
    /// handler does with them: .NET and Mono drop the Authorization header when they follow one.
    /// The session is not owned: dispose it yourself, after the HttpClient.
    /// </remarks>
    public sealed class CloudAuthHandler : DelegatingHandler
    {
        private readonly Session session;

        /// <summary>A handler over a new <see cref="HttpClientHandler"/>.</summary>
        public CloudAuthHandler(Session session) : this(session, new HttpClientHandler())
        {
        }

        /// <summary>A handler over <paramref name="innerHandler"/> (which it then owns, as any DelegatingHandler).</summary>
        public CloudAuthHandler(Session session, HttpMessageHandler innerHandler) : base(CheckInner(session, innerHandler))
        {
            this.session = session;
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

            // Buffer the body now: a stream can be read only once, and a retry needs it again.
            byte[] content = null;
            List<KeyValuePair<string, IEnumerable<string>>> contentHeaders = null;
            if (request.Content != null)
            {
                content = await request.Content.ReadAsByteArrayAsync().ConfigureAwait(false);
                contentHeaders = new List<KeyValuePair<string, IEnumerable<string>>>(request.Content.Headers);
            }

            // The token call may go to the network (first use, refresh): keep it off the
            // caller's thread. A cached token costs no lock and no I/O.
            string used = await Task.Run(() => session.GetToken(), cancellationToken).ConfigureAwait(false);
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", used);
            HttpResponseMessage response = await base.SendAsync(request, cancellationToken).ConfigureAwait(false);
            if (response.StatusCode != HttpStatusCode.Unauthorized)
            {
                return response;
            }

            string fresh = await Task.Run(() => Refresh(used), cancellationToken).ConfigureAwait(false);
            HttpRequestMessage retry = Clone(request, content, contentHeaders);
            retry.Headers.Authorization = new AuthenticationHeaderValue("Bearer", fresh);
            response.Dispose();
            return await base.SendAsync(retry, cancellationToken).ConfigureAwait(false);
        }

        /// <summary>
        /// A token other than <paramref name="rejected"/>. The library drops the token only if
        /// it is still the rejected one (atomically), so when several requests get a 401 at
        /// once only the first causes a token request and the others pick up its replacement.
        /// </summary>
        private string Refresh(string rejected)
        {
            session.Invalidate(rejected);
            return session.GetToken();
        }

        private void CheckSecure(Uri uri)
        {
            if (uri == null || !uri.IsAbsoluteUri)
            {
                throw new InvalidOperationException("CloudAuthHandler needs an absolute request URI (set HttpClient.BaseAddress)");
            }
            if (uri.Scheme == Uri.UriSchemeHttps || uri.IsLoopback || session.AllowsInsecureHttp)
            {
                return;
            }
            string where = uri.Scheme + "://" + uri.Authority;
            if (uri.Scheme == Uri.UriSchemeHttp)
            {
                throw new InsecureUrlException("refusing to send a token over plain http to " + where +
                    " (not a loopback host; set allow_insecure_http=true to allow it)");
            }
            throw new InvalidArgumentException("CloudAuthHandler sends tokens over http(s) only, not to " + where);
        }

        private static HttpRequestMessage Clone(
            HttpRequestMessage request, byte[] content, List<KeyValuePair<string, IEnumerable<string>>> contentHeaders)
        {
            HttpRequestMessage clone = new HttpRequestMessage(request.Method, request.RequestUri);
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
