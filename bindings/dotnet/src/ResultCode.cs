namespace CloudAuth
{
    /// <summary>
    /// <c>cloudauth_result</c>. The integer values are the C ABI's: they are never renumbered
    /// and never reused.
    /// </summary>
    public enum ResultCode
    {
        /// <summary>Success.</summary>
        Ok = 0,

        /// <summary>A bad argument: an unknown configuration key, a malformed value, CR/LF in a header, ...</summary>
        InvalidArgument = 1,

        /// <summary>The token buffer was too small. The binding grows it and retries; you never see this one.</summary>
        BufferTooSmall = 2,

        /// <summary>Credentials or a token would travel over plain http to a non-loopback host. Nothing was sent.</summary>
        InsecureUrl = 3,

        /// <summary>DNS, connect, TLS, or a connection reset.</summary>
        Network = 4,

        /// <summary>A connect or total timeout expired.</summary>
        Timeout = 5,

        /// <summary>The token endpoint refused the credentials (an OAuth error, HTTP 400/401).</summary>
        AuthRejected = 6,

        /// <summary>The token endpoint kept failing (5xx, 429, other status) after the allowed retries.</summary>
        TokenEndpoint = 7,

        /// <summary>The token response is unusable: not JSON, no access_token, bad expires_in or token_type.</summary>
        BadTokenResponse = 8,

        /// <summary>A response exceeded its size cap.</summary>
        TooLarge = 9,

        /// <summary>A bug in cloudauth, caught at the library boundary.</summary>
        Internal = 10,

        /// <summary>An async operation was cancelled, or its session was disposed first.</summary>
        Cancelled = 11,

        /// <summary>No usable token without waiting for the token endpoint (a fetch was started).</summary>
        WouldBlock = 12,
    }
}
