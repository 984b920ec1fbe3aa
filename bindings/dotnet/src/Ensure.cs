using System;
using System.Collections.Generic;

namespace CloudAuth
{
    /// <summary>
    /// Turns a <c>cloudauth_result</c> into nothing (OK) or the exception for its code, carrying
    /// <c>cloudauth_last_error()</c>. The one table from result codes to exceptions lives here.
    /// </summary>
    internal static class Ensure
    {
        private static readonly Dictionary<ResultCode, Func<string, CloudAuthException>> Exceptions =
            new Dictionary<ResultCode, Func<string, CloudAuthException>>
            {
                { ResultCode.InvalidArgument, m => new InvalidArgumentException(m) },
                { ResultCode.InsecureUrl, m => new InsecureUrlException(m) },
                { ResultCode.Network, m => new NetworkException(m) },
                { ResultCode.Timeout, m => new CloudAuthTimeoutException(m) },
                { ResultCode.AuthRejected, m => new AuthRejectedException(m) },
                { ResultCode.TokenEndpoint, m => new TokenEndpointException(m) },
                { ResultCode.BadTokenResponse, m => new BadTokenResponseException(m) },
                { ResultCode.TooLarge, m => new TooLargeException(m) },
                { ResultCode.Internal, m => new InternalErrorException(m) },
                // BufferTooSmall is handled where it can happen (Session.GetToken); anywhere
                // else it would be a bug, reported through the base class.
            };

        /// <summary>
        /// Throws unless <paramref name="result"/> is OK. Must be called right after the failed
        /// native call, on the same thread: the message is thread-local and only valid until the
        /// next cloudauth call on this thread.
        /// </summary>
        internal static void Success(int result, string function)
        {
            if (result != (int)ResultCode.Ok)
            {
                throw Error(result, function);
            }
        }

        internal static CloudAuthException Error(int result, string function)
        {
            return Error(result, function, Utf8.FromNative(NativeMethods.cloudauth_last_error()));
        }

        /// <summary>The exception for a code and a message given with it (an async completion's).</summary>
        internal static CloudAuthException Error(int result, string function, string message)
        {
            ResultCode code = (ResultCode)result;
            if (string.IsNullOrEmpty(message))
            {
                // Only if something cleared the thread's message in between (e.g. a handle freed
                // on this thread by the marshaler right after the call).
                message = function + " failed with " + Library.ResultName(code);
            }
            Func<string, CloudAuthException> create;
            if (Exceptions.TryGetValue(code, out create))
            {
                return create(message);
            }
            return new CloudAuthException(code, message);
        }
    }
}
