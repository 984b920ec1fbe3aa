using System;
using System.Collections.Generic;
using System.Runtime.InteropServices;

namespace CloudAuth
{
    /// <summary>
    /// OAuth2 client credentials, the cached access token and a connection pool
    /// (<c>cloudauth_session</c>). Thread-safe: share one session across all threads; concurrent
    /// callers cause at most one token request at a time.
    /// </summary>
    /// <example>
    /// <code>
    /// using (var session = new Session(new Dictionary&lt;string, string&gt; {
    ///     { "client_id", id }, { "client_secret", secret } }))
    /// {
    ///     Response r = session.Send("GET", "/v5.0/ocr/RecognizeImage?id=" + taskId);
    /// }
    /// </code>
    /// </example>
    public sealed partial class Session : IDisposable
    {
        // Big enough for the stand-in's tokens and most JWTs; a session remembers the largest
        // size it needed, so the grow-and-retry path costs one extra call per session at most.
        private const int InitialTokenBuffer = 256;
        private const int MaxTokenAttempts = 8;

        private readonly SessionHandle handle;
        private int tokenBufferSize = InitialTokenBuffer;
        private volatile bool disposed;
        private long eventsId;

        /// <summary>
        /// Creates a session from configuration keys and values, passed straight to
        /// <c>cloudauth_config_set</c>: client_id and client_secret (required), token_url,
        /// base_url, scope, auth_method, timeout_ms, connect_timeout_ms, refresh_skew_s,
        /// max_retries, max_retry_wait_ms, default_expires_in_s, max_response_bytes,
        /// user_agent, ca_file, proxy, allow_insecure_http; for identity providers auth_method
        /// (also private_key_jwt, client_secret_jwt, tls_client_auth,
        /// self_signed_tls_client_auth), client_key_file, client_key_id, client_assertion_alg,
        /// client_cert_file, dpop, dpop_key_file, issuer, audience, resource (comma-separated)
        /// and token_param.NAME for any extra token-request field; for workload identity
        /// (no stored secret, see the README) auth_method client_assertion or none,
        /// client_assertion_file, client_assertion_type, client_assertion_aud, grant_type
        /// (jwt_bearer, token_exchange), assertion_issuer, assertion_subject,
        /// scope_in_assertion, credentials_file, subject_token_file, subject_token_type,
        /// requested_token_type, actor_token_file, actor_token_type and token_cache_key_file.
        /// Numbers are decimal strings;
        /// booleans are read by the library (true/false, 1/0, yes/no, on/off, in any case). No
        /// network traffic happens here.
        /// </summary>
        /// <exception cref="ArgumentNullException">options, a key or a value is null.</exception>
        /// <exception cref="ArgumentException">a key or value contains NUL or a lone surrogate.</exception>
        /// <exception cref="InvalidArgumentException">an unknown key, a malformed value, missing credentials.</exception>
        /// <exception cref="InsecureUrlException">token_url is plain http to a non-loopback host.</exception>
        public Session(IDictionary<string, string> options)
            : this(options, null, false, null)
        {
        }

        /// <summary>
        /// As <see cref="Session(IDictionary{string, string})"/>, with <paramref name="onEvent"/>
        /// receiving the session's events (token fetched, fetch failed, retry, 401 resend, cache
        /// unavailable) on whatever thread did the work. It must return quickly; an exception it
        /// throws is swallowed (it never reaches native code).
        /// </summary>
        public Session(IDictionary<string, string> options, Action<Event> onEvent)
            : this(options, null, false, onEvent)
        {
        }

        private Session(IDictionary<string, string> options, string envPrefix, bool fromEnv, Action<Event> onEvent)
        {
            if (options == null)
            {
                throw new ArgumentNullException("options");
            }
            using (ConfigHandle config = NativeMethods.cloudauth_config_new())
            {
                if (fromEnv)
                {
                    byte[] prefix = envPrefix == null ? null : Utf8.ToNative(envPrefix, "prefix", "prefix");
                    Ensure.Success(NativeMethods.cloudauth_config_from_env(config, prefix), "cloudauth_config_from_env");
                }
                if (onEvent != null)
                {
                    eventsId = EventHub.Register(onEvent);
                    // A blocking call's events run the handler on the calling thread before the
                    // call returns; those of library threads come through the queue.
                    Ensure.Success(
                        NativeMethods.cloudauth_config_set_event_callback(config, EventHub.Native, new IntPtr(eventsId)),
                        "cloudauth_config_set_event_callback");
                    Ensure.Success(
                        NativeMethods.cloudauth_config_set_event_queue(config, Completions.Queue, (ulong)eventsId),
                        "cloudauth_config_set_event_queue");
                }
                foreach (KeyValuePair<string, string> option in options)
                {
                    if (option.Key == null)
                    {
                        throw new ArgumentNullException("options", "an option name is null");
                    }
                    byte[] key = Utf8.ToNative(option.Key, "options", "option name");
                    byte[] value = Utf8.ToNative(option.Value, "options", "the value of option '" + option.Key + "'");
                    try
                    {
                        Ensure.Success(NativeMethods.cloudauth_config_set(config, key, value), "cloudauth_config_set");
                    }
                    finally
                    {
                        Array.Clear(value, 0, value.Length); // it may be the secret
                    }
                }

                SessionHandle created;
                int result = NativeMethods.cloudauth_session_new(config, out created);
                if (result != (int)ResultCode.Ok)
                {
                    CloudAuthException error = Ensure.Error(result, "cloudauth_session_new");
                    created.Dispose(); // holds NULL: frees nothing
                    throw error;
                }
                handle = created;
            }
        }

        /// <summary>
        /// The origin the token is meant for: "scheme://host[:port]" of base_url (the default
        /// one, https://api.aspose.cloud, when it was not set), as the library serializes it
        /// (cloudauth_session_origin). <see cref="CloudAuthHandler"/> adds the token only to
        /// requests for this origin.
        /// </summary>
        /// <exception cref="ObjectDisposedException">the session was disposed.</exception>
        public string Origin
        {
            get
            {
                IntPtr origin = NativeMethods.cloudauth_session_origin(Handle());
                if (origin == IntPtr.Zero)
                {
                    throw Ensure.Error((int)ResultCode.InvalidArgument, "cloudauth_session_origin");
                }
                return Utf8.FromNative(origin);
            }
        }

        /// <summary>
        /// Throws unless a request to <paramref name="url"/> may carry the token, by the rule
        /// the library applies to its own requests (cloudauth_session_check_url): http(s) with
        /// a host, and https, a loopback host, or allow_insecure_http (in any form the library
        /// accepts). <see cref="CloudAuthHandler"/> asks here, so it has no copy of the rule.
        /// </summary>
        /// <exception cref="InsecureUrlException">plain http to a non-loopback host.</exception>
        /// <exception cref="InvalidArgumentException">not an http(s) URL with a host.</exception>
        internal void CheckUrl(string url)
        {
            byte[] nativeUrl = Utf8.ToNative(url, "url", "url");
            Ensure.Success(NativeMethods.cloudauth_session_check_url(Handle(), nativeUrl), "cloudauth_session_check_url");
        }

        /// <summary>
        /// The current valid access token, fetched or refreshed first when needed (a cached token
        /// costs no network traffic). The token is a credential: never log it.
        /// </summary>
        /// <exception cref="ObjectDisposedException">the session was disposed.</exception>
        /// <exception cref="CloudAuthException">the token request failed; Code says how.</exception>
        public string GetToken()
        {
            SessionHandle h = Handle();
            int size = tokenBufferSize;
            for (int attempt = 1; ; attempt++)
            {
                byte[] buffer = new byte[size];
                UIntPtr length;
                int result = NativeMethods.cloudauth_session_token(h, buffer, (UIntPtr)buffer.Length, out length);
                if (result == (int)ResultCode.BufferTooSmall && attempt < MaxTokenAttempts)
                {
                    // A concurrent refresh may change the length between calls: loop, bounded.
                    ulong needed = length.ToUInt64() + 1;
                    if (needed > int.MaxValue)
                    {
                        throw new InternalErrorException("cloudauth_session_token: the token is " + length + " bytes long");
                    }
                    size = Math.Max(size, (int)needed);
                    tokenBufferSize = size;
                    continue;
                }
                Ensure.Success(result, "cloudauth_session_token");
                try
                {
                    ulong count = length.ToUInt64();
                    if (count >= (ulong)buffer.Length)
                    {
                        throw new InternalErrorException("cloudauth_session_token reported a token longer than its buffer");
                    }
                    return Utf8.Decode(buffer, (int)count);
                }
                finally
                {
                    Array.Clear(buffer, 0, buffer.Length);
                }
            }
        }

        /// <summary>
        /// How long the current valid token has left, in whole seconds (from the token
        /// response's expires_in, on a monotonic clock); a token is fetched first if none is held.
        /// </summary>
        /// <exception cref="ObjectDisposedException">the session was disposed.</exception>
        /// <exception cref="CloudAuthException">the token request failed; Code says how.</exception>
        public TimeSpan GetTokenExpiresIn()
        {
            ulong seconds;
            Ensure.Success(NativeMethods.cloudauth_session_token_expires_in(Handle(), out seconds), "cloudauth_session_token_expires_in");
            return TimeSpan.FromSeconds(seconds);
        }

        /// <summary>Drops the cached token: the next use fetches a new one.</summary>
        /// <exception cref="ObjectDisposedException">the session was disposed.</exception>
        public void Invalidate()
        {
            Ensure.Success(NativeMethods.cloudauth_session_invalidate(Handle()), "cloudauth_session_invalidate");
        }

        /// <summary>
        /// Drops the cached token only if it is still <paramref name="rejectedToken"/> (one a
        /// server answered 401 to): a token another thread already fetched survives, so many
        /// requests failing at once cause one new token request.
        /// </summary>
        /// <exception cref="ArgumentNullException"><paramref name="rejectedToken"/> is null.</exception>
        /// <exception cref="ObjectDisposedException">the session was disposed.</exception>
        public void Invalidate(string rejectedToken)
        {
            if (rejectedToken == null)
            {
                throw new ArgumentNullException(nameof(rejectedToken));
            }
            byte[] token = Utf8.ToNative(rejectedToken, nameof(rejectedToken), "token");
            Ensure.Success(NativeMethods.cloudauth_session_invalidate_token(Handle(), token), "cloudauth_session_invalidate_token");
        }

        /// <summary>
        /// Sends an authorized request and reads the whole response. The session adds
        /// <c>Authorization: Bearer</c>; on a 401 it fetches a new token and retries once.
        /// Any HTTP status is a <see cref="Response"/>, not an exception.
        /// </summary>
        /// <param name="method">"GET", "POST", ...</param>
        /// <param name="url">an absolute http(s) URL, or a path joined to base_url.</param>
        /// <param name="headers">extra request headers, or null. Not Authorization: the session sets it.</param>
        /// <param name="body">the request body (binary-safe), or null.</param>
        /// <exception cref="ArgumentNullException">method, url, or a header value is null.</exception>
        /// <exception cref="ArgumentException">NUL or a lone surrogate in a string; an empty header name or one with ':'.</exception>
        /// <exception cref="ObjectDisposedException">the session was disposed.</exception>
        /// <exception cref="CloudAuthException">the request or the token request failed; Code says how.</exception>
        public Response Send(string method, string url, IDictionary<string, string> headers = null, byte[] body = null)
        {
            byte[] nativeMethod = Utf8.ToNative(method, "method", "method");
            byte[] nativeUrl = Utf8.ToNative(url, "url", "url");
            List<byte[]> lines = HeaderLines(headers);
            SessionHandle h = Handle();

            return WithHeaderPointers(lines, pointers =>
            {
                bool hasBody = body != null && body.Length > 0;
                ResponseHandle response;
                int result = NativeMethods.cloudauth_session_request(
                    h,
                    nativeMethod,
                    nativeUrl,
                    pointers,
                    (UIntPtr)lines.Count,
                    hasBody ? body : null,
                    (UIntPtr)(hasBody ? body.Length : 0),
                    out response);
                using (response)
                {
                    Ensure.Success(result, "cloudauth_session_request");
                    return Response.Read(response);
                }
            });
        }

        /// <summary>
        /// Runs <paramref name="call"/> with the header lines pinned and their addresses in an
        /// array (null when there are none); the library copies them before the call returns.
        /// </summary>
        private static T WithHeaderPointers<T>(List<byte[]> lines, Func<IntPtr[], T> call)
        {
            GCHandle[] pins = new GCHandle[lines.Count];
            try
            {
                IntPtr[] pointers = null;
                if (lines.Count > 0)
                {
                    pointers = new IntPtr[lines.Count];
                    for (int i = 0; i < lines.Count; i++)
                    {
                        pins[i] = GCHandle.Alloc(lines[i], GCHandleType.Pinned);
                        pointers[i] = pins[i].AddrOfPinnedObject();
                    }
                }
                return call(pointers);
            }
            finally
            {
                foreach (GCHandle pin in pins)
                {
                    if (pin.IsAllocated)
                    {
                        pin.Free();
                    }
                }
            }
        }

        /// <summary>
        /// Frees the native session. Safe to call more than once; later calls are no-ops. Calls
        /// already running on other threads finish first (the free waits for them); calls made
        /// after Dispose throw ObjectDisposedException.
        /// </summary>
        public void Dispose()
        {
            EventHub.Unregister(eventsId);
            // Our own flag: SafeHandle.IsClosed stays false until the last in-flight call
            // releases its reference, and new calls could still get in until then.
            disposed = true;
            handle.Dispose();
        }

        private SessionHandle Handle()
        {
            if (disposed)
            {
                throw new ObjectDisposedException(typeof(Session).FullName);
            }
            return handle;
        }

        private static List<byte[]> HeaderLines(IDictionary<string, string> headers)
        {
            List<byte[]> lines = new List<byte[]>();
            if (headers == null)
            {
                return lines;
            }
            foreach (KeyValuePair<string, string> header in headers)
            {
                if (header.Key == null)
                {
                    throw new ArgumentNullException("headers", "a header name is null");
                }
                if (header.Key.Length == 0 || header.Key.IndexOf(':') >= 0)
                {
                    throw new ArgumentException("header name '" + header.Key + "' is empty or contains ':'", "headers");
                }
                if (header.Value == null)
                {
                    throw new ArgumentNullException("headers", "the value of header '" + header.Key + "' is null");
                }
                lines.Add(Utf8.ToNative(header.Key + ": " + header.Value, "headers", "header '" + header.Key + "'"));
            }
            return lines;
        }
    }
}
