using System;

namespace CloudAuth
{
    /// <summary>
    /// An error reported by the cloudauth library. <see cref="Code"/> is the C result code;
    /// <see cref="Exception.Message"/> is the library's one-line explanation
    /// (<c>cloudauth_last_error()</c>), which never contains a secret or a token.
    /// Each code has its own subclass, so callers can catch just the ones they handle, or
    /// filter: <c>catch (CloudAuthException e) when (e.Code == ResultCode.Timeout)</c>.
    /// </summary>
    public class CloudAuthException : Exception
    {
        public CloudAuthException(ResultCode code, string message) : base(message)
        {
            Code = code;
        }

        /// <summary>The result code the library returned.</summary>
        public ResultCode Code { get; private set; }
    }

    /// <summary><see cref="ResultCode.InvalidArgument"/>: rejected by the library (unknown key, bad value, CR/LF or Authorization in a header, ...).</summary>
    public sealed class InvalidArgumentException : CloudAuthException
    {
        public InvalidArgumentException(string message) : base(ResultCode.InvalidArgument, message) { }
    }

    /// <summary><see cref="ResultCode.InsecureUrl"/>: a credential would have gone over plain http to a remote host; nothing was sent.</summary>
    public sealed class InsecureUrlException : CloudAuthException
    {
        public InsecureUrlException(string message) : base(ResultCode.InsecureUrl, message) { }
    }

    /// <summary><see cref="ResultCode.Network"/>: DNS, connect, TLS, or a connection reset.</summary>
    public sealed class NetworkException : CloudAuthException
    {
        public NetworkException(string message) : base(ResultCode.Network, message) { }
    }

    /// <summary><see cref="ResultCode.Timeout"/>: a connect or total timeout expired.
    /// (Named so that it does not clash with <see cref="System.TimeoutException"/>.)</summary>
    public sealed class CloudAuthTimeoutException : CloudAuthException
    {
        public CloudAuthTimeoutException(string message) : base(ResultCode.Timeout, message) { }
    }

    /// <summary><see cref="ResultCode.AuthRejected"/>: the token endpoint refused the credentials.</summary>
    public sealed class AuthRejectedException : CloudAuthException
    {
        public AuthRejectedException(string message) : base(ResultCode.AuthRejected, message) { }
    }

    /// <summary><see cref="ResultCode.TokenEndpoint"/>: the token endpoint kept failing after the allowed retries.</summary>
    public sealed class TokenEndpointException : CloudAuthException
    {
        public TokenEndpointException(string message) : base(ResultCode.TokenEndpoint, message) { }
    }

    /// <summary><see cref="ResultCode.BadTokenResponse"/>: the token endpoint's answer was unusable.</summary>
    public sealed class BadTokenResponseException : CloudAuthException
    {
        public BadTokenResponseException(string message) : base(ResultCode.BadTokenResponse, message) { }
    }

    /// <summary><see cref="ResultCode.TooLarge"/>: a response exceeded its size cap.</summary>
    public sealed class TooLargeException : CloudAuthException
    {
        public TooLargeException(string message) : base(ResultCode.TooLarge, message) { }
    }

    /// <summary><see cref="ResultCode.Internal"/>: a bug in cloudauth, caught at the boundary.</summary>
    public sealed class InternalErrorException : CloudAuthException
    {
        public InternalErrorException(string message) : base(ResultCode.Internal, message) { }
    }
}
