using System;
using System.Collections.Concurrent;
using System.Collections.Generic;
using System.Runtime.InteropServices;
using System.Threading;
using System.Threading.Tasks;

namespace CloudAuth
{
    public sealed partial class Session
    {
        /// <summary>
        /// The current valid token, without blocking a thread: at once when one is usable
        /// (<c>cloudauth_session_token_cached</c>, no thread hop), otherwise over
        /// <c>cloudauth_session_token_async</c>. Cancelling <paramref name="cancellationToken"/>
        /// ends the wait at once (a fetch already started still lands for later callers).
        /// </summary>
        /// <exception cref="OperationCanceledException">cancelled.</exception>
        /// <exception cref="CloudAuthException">the token request failed.</exception>
        public Task<string> GetTokenAsync(CancellationToken cancellationToken = default(CancellationToken))
        {
            string cached = TryGetCachedToken();
            if (cached != null)
            {
                return Task.FromResult(cached);
            }
            cancellationToken.ThrowIfCancellationRequested();
            return AsyncOps.Start<string>(cancellationToken, (ulong tag, out IntPtr op) =>
                NativeMethods.cloudauth_session_token_queued(Handle(), Completions.Queue, tag, out op));
        }

        /// <summary>
        /// <see cref="Send"/> without blocking a thread, over <c>cloudauth_session_request_async</c>:
        /// the same checks, token handling and 401 resend. Cancellation is honoured within
        /// milliseconds, also while a token is being fetched. Disposing the session with requests
        /// in flight ends them with a <see cref="CloudAuthException"/> of code Cancelled.
        /// </summary>
        public Task<Response> SendAsync(string method, string url, IDictionary<string, string> headers = null,
            byte[] body = null, CancellationToken cancellationToken = default(CancellationToken))
        {
            byte[] nativeMethod = Utf8.ToNative(method, "method", "method");
            byte[] nativeUrl = Utf8.ToNative(url, "url", "url");
            List<byte[]> lines = HeaderLines(headers);
            cancellationToken.ThrowIfCancellationRequested();
            bool hasBody = body != null && body.Length > 0;
            return WithHeaderPointers(lines, pointers =>
                AsyncOps.Start<Response>(cancellationToken, (ulong tag, out IntPtr op) =>
                    NativeMethods.cloudauth_session_request_queued(Handle(), nativeMethod, nativeUrl, pointers,
                        (UIntPtr)lines.Count, hasBody ? body : null, (UIntPtr)(hasBody ? body.Length : 0),
                        Completions.Queue, tag, out op)));
        }

        // Per thread: the native call writes the token here, so the cached path allocates nothing.
        [ThreadStatic]
        private static byte[] tokenScratch;

        // The last token handed out, as bytes and as the string made from them: while the
        // native bytes are unchanged the same string is returned (no decode, no allocation, and
        // the handler can reuse its header by reference). Replaced whole, never mutated.
        private volatile DecodedToken lastToken;

        private sealed class DecodedToken
        {
            internal readonly byte[] Bytes;
            internal readonly string Text;

            internal DecodedToken(byte[] bytes, string text)
            {
                Bytes = bytes;
                Text = text;
            }

            internal bool Holds(byte[] buffer, int count)
            {
                if (Bytes.Length != count)
                {
                    return false;
                }
                // Eight bytes at a time: twice as fast as a byte loop on Mono for a ~1 KB JWT.
                int i = 0;
                for (; i + 8 <= count; i += 8)
                {
                    if (BitConverter.ToInt64(Bytes, i) != BitConverter.ToInt64(buffer, i))
                    {
                        return false;
                    }
                }
                for (; i < count; i++)
                {
                    if (Bytes[i] != buffer[i])
                    {
                        return false;
                    }
                }
                return true;
            }
        }

        /// <summary>The token if one is usable now, else null (a fetch is then started).</summary>
        internal string TryGetCachedToken()
        {
            byte[] buffer = tokenScratch;
            if (buffer == null || buffer.Length < tokenBufferSize)
            {
                buffer = new byte[tokenBufferSize];
                tokenScratch = buffer;
            }
            UIntPtr length;
            int result = NativeMethods.cloudauth_session_token_cached(Handle(), buffer, (UIntPtr)buffer.Length, out length);
            if (result == (int)ResultCode.Ok)
            {
                ulong count = length.ToUInt64();
                if (count >= (ulong)buffer.Length)
                {
                    throw new InternalErrorException("cloudauth_session_token_cached reported a token longer than its buffer");
                }
                DecodedToken last = lastToken;
                if (last != null && last.Holds(buffer, (int)count))
                {
                    return last.Text;
                }
                byte[] bytes = new byte[(int)count];
                Buffer.BlockCopy(buffer, 0, bytes, 0, (int)count);
                DecodedToken decoded = new DecodedToken(bytes, Utf8.Decode(bytes, (int)count));
                lastToken = decoded;
                return decoded.Text;
            }
            if (result == (int)ResultCode.BufferTooSmall)
            {
                tokenBufferSize = (int)length.ToUInt32() + 1;
                return TryGetCachedToken();
            }
            if (result == (int)ResultCode.WouldBlock)
            {
                return null;
            }
            throw Ensure.Error(result, "cloudauth_session_token_cached");
        }
    }

    /// <summary>
    /// Native async operations as Tasks. The native side gets a tag into <see cref="Pending"/>,
    /// never a managed pointer; an operation's state stays in the table exactly until its
    /// completion was taken from the queue (<see cref="Completions"/>).
    /// </summary>
    internal static class AsyncOps
    {
        internal delegate int Starter(ulong tag, out IntPtr op);

        private static readonly ConcurrentDictionary<long, Operation> Pending = new ConcurrentDictionary<long, Operation>();
        private static long nextId;

        private sealed class Operation
        {
            internal readonly object Lock = new object();
            internal IntPtr Handle;          // the cloudauth_op, freed once both sides are done
            internal bool Completed;
            internal bool Started;
            internal CancellationTokenRegistration Registration;
            internal Action<int, IntPtr, IntPtr, UIntPtr, IntPtr> Finish;
        }

        internal static Task<T> Start<T>(CancellationToken cancellationToken, Starter start)
        {
            // Continuations run on the thread pool, never on the library thread that completes.
            TaskCompletionSource<T> tcs = new TaskCompletionSource<T>(TaskCreationOptions.RunContinuationsAsynchronously);
            Operation operation = new Operation();
            long id = Interlocked.Increment(ref nextId);
            operation.Finish = (result, response, token, tokenLen, error) => Complete(tcs, result, response, token, tokenLen, error);
            Pending[id] = operation;
            IntPtr op;
            int rc;
            try
            {
                rc = start((ulong)id, out op);
            }
            catch
            {
                Operation ignored;
                Pending.TryRemove(id, out ignored);
                throw;
            }
            if (rc != (int)ResultCode.Ok)
            {
                Operation ignored;
                Pending.TryRemove(id, out ignored); // nothing started: the completion never runs
                throw Ensure.Error(rc, "cloudauth_*_async");
            }
            lock (operation.Lock)
            {
                operation.Handle = op;
                operation.Started = true;
                if (operation.Completed)
                {
                    Release(operation);
                    return tcs.Task;
                }
                if (cancellationToken.CanBeCanceled)
                {
                    operation.Registration = cancellationToken.Register(() =>
                    {
                        // First the task, so the CANCELLED completion that follows finds it
                        // cancelled and is not reported as an error.
                        tcs.TrySetCanceled(cancellationToken);
                        lock (operation.Lock)
                        {
                            if (operation.Handle != IntPtr.Zero)
                            {
                                NativeMethods.cloudauth_op_cancel(operation.Handle);
                            }
                        }
                    });
                }
            }
            return tcs.Task;
        }

        private static void Release(Operation operation)
        {
            if (operation.Handle != IntPtr.Zero)
            {
                NativeMethods.cloudauth_op_free(operation.Handle);
                operation.Handle = IntPtr.Zero;
            }
        }

        private static void Complete<T>(TaskCompletionSource<T> tcs, int result, IntPtr response, IntPtr token, UIntPtr tokenLen, IntPtr error)
        {
            if (result != (int)ResultCode.Ok)
            {
                if (result == (int)ResultCode.Cancelled && tcs.Task.IsCanceled)
                {
                    return;
                }
                tcs.TrySetException(Ensure.Error(result, "cloudauth_*_async", Utf8.FromNative(error)));
                return;
            }
            object value;
            if (typeof(T) == typeof(Response))
            {
                using (ResponseHandle h = ResponseHandle.Own(response))
                {
                    value = Response.Read(h);
                }
            }
            else
            {
                value = Utf8.FromNative(token);
            }
            tcs.TrySetResult((T)value);
        }

        /// <summary>Runs on the completion thread, for each operation's completion.</summary>
        internal static void Finish(ulong tag, int result, IntPtr response, IntPtr token, UIntPtr tokenLen, IntPtr error)
        {
            Operation operation;
            if (!Pending.TryRemove((long)tag, out operation))
            {
                if (response != IntPtr.Zero)
                {
                    NativeMethods.cloudauth_response_free(response);
                }
                return;
            }
            try
            {
                operation.Finish(result, response, token, tokenLen, error);
            }
            catch (Exception)
            {
                // Nothing may unwind into native code.
            }
            bool started;
            lock (operation.Lock)
            {
                operation.Completed = true;
                started = operation.Started;
                if (started)
                {
                    Release(operation);
                }
            }
            if (started)
            {
                // Outside the lock: Dispose waits for a cancel callback that may be taking it.
                operation.Registration.Dispose();
            }
        }
    }
}
