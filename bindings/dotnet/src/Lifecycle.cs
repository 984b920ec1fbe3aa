using System;
using System.Collections.Concurrent;
using System.Collections.Generic;
using System.Runtime.InteropServices;
using System.Threading;

namespace CloudAuth
{
    public sealed partial class Session
    {
        /// <summary>
        /// A session configured from the environment: for every known key K the variable
        /// <c>&lt;prefix&gt;&lt;K upper-cased&gt;</c> (prefix null means "CLOUDAUTH_", e.g.
        /// CLOUDAUTH_CLIENT_ID, CLOUDAUTH_CLIENT_SECRET_FILE), then <paramref name="overrides"/>
        /// on top. Other variables are ignored; a malformed value is an
        /// <see cref="InvalidArgumentException"/> naming the variable.
        /// </summary>
        public static Session FromEnvironment(string prefix = null, IDictionary<string, string> overrides = null, Action<Event> onEvent = null)
        {
            return new Session(overrides ?? new Dictionary<string, string>(), prefix, true, onEvent);
        }

        /// <summary>
        /// Rotates the credentials: later token requests use them (a fetch in flight finishes
        /// with the old ones); the current token stays until it expires or is invalidated.
        /// </summary>
        public void SetCredentials(string clientId, string clientSecret)
        {
            byte[] id = Utf8.ToNative(clientId, "clientId", "client id");
            byte[] secret = Utf8.ToNative(clientSecret, "clientSecret", "client secret");
            try
            {
                Ensure.Success(NativeMethods.cloudauth_session_set_credentials(Handle(), id, secret), "cloudauth_session_set_credentials");
            }
            finally
            {
                Array.Clear(secret, 0, secret.Length);
            }
        }

        /// <summary>The session's counters (<c>cloudauth_session_stats</c>); no lock, no I/O.</summary>
        public Stats GetStats()
        {
            NativeStats native;
            Ensure.Success(
                NativeMethods.cloudauth_session_stats(Handle(), out native, new UIntPtr((uint)Marshal.SizeOf(typeof(NativeStats)))),
                "cloudauth_session_stats");
            return new Stats(native);
        }
    }

    /// <summary><c>cloudauth_stats</c> as C lays it out.</summary>
    [StructLayout(LayoutKind.Sequential)]
    internal struct NativeStats
    {
        public ulong TokenRequests, TokenFailures, BackgroundRefreshes, ApiRequests, UnauthorizedResends,
            SharedCacheHits, SharedCacheErrors;
        public long TokenExpiresInMs;
        public ulong ConnectionResends;
    }

    /// <summary>A session's counters, for dashboards and tests.</summary>
    public sealed class Stats
    {
        internal Stats(NativeStats s)
        {
            TokenRequests = s.TokenRequests;
            TokenFailures = s.TokenFailures;
            BackgroundRefreshes = s.BackgroundRefreshes;
            ApiRequests = s.ApiRequests;
            UnauthorizedResends = s.UnauthorizedResends;
            SharedCacheHits = s.SharedCacheHits;
            SharedCacheErrors = s.SharedCacheErrors;
            TokenExpiresInMs = s.TokenExpiresInMs;
            ConnectionResends = s.ConnectionResends;
        }

        /// <summary>HTTP requests sent to the token endpoint, retries included.</summary>
        public ulong TokenRequests { get; private set; }
        /// <summary>Token fetches that ended in an error, after retries.</summary>
        public ulong TokenFailures { get; private set; }
        /// <summary>Successful refreshes done off the callers' threads.</summary>
        public ulong BackgroundRefreshes { get; private set; }
        /// <summary>API requests sent, resends included.</summary>
        public ulong ApiRequests { get; private set; }
        /// <summary>API requests resent after a 401.</summary>
        public ulong UnauthorizedResends { get; private set; }
        /// <summary>Tokens taken from the file or Redis cache.</summary>
        public ulong SharedCacheHits { get; private set; }
        /// <summary>File or Redis cache operations that failed (the call went on without it).</summary>
        public ulong SharedCacheErrors { get; private set; }
        /// <summary>The current token's remaining life in milliseconds; -1 when there is none.</summary>
        public long TokenExpiresInMs { get; private set; }
        /// <summary>Requests sent once more on a new connection because a kept-alive one failed under them before any answer came.</summary>
        public ulong ConnectionResends { get; private set; }
    }

    /// <summary>One event of a session (<c>cloudauth_event</c>); never holds a secret or a token.</summary>
    public sealed class Event
    {
        private static readonly string[] Kinds = { "", "token_fetched", "token_fetch_failed", "retry", "unauthorized", "cache_unavailable" };

        internal Event(int kind, string reason, ResultCode result, ushort httpStatus, ulong durationMs, string message)
        {
            Kind = kind > 0 && kind < Kinds.Length ? Kinds[kind] : "unknown";
            Reason = reason;
            Result = result;
            HttpStatus = httpStatus;
            DurationMs = durationMs;
            Message = message;
        }

        /// <summary>"token_fetched", "token_fetch_failed", "retry", "unauthorized" or "cache_unavailable".</summary>
        public string Kind { get; private set; }
        /// <summary>Why a token was asked for ("first_use", "refresh_ahead", …), "" otherwise.</summary>
        public string Reason { get; private set; }
        /// <summary>Ok, or the failure's code.</summary>
        public ResultCode Result { get; private set; }
        /// <summary>The HTTP status behind the event; 0 without an HTTP answer.</summary>
        public ushort HttpStatus { get; private set; }
        /// <summary>How long the fetch took; for "retry", the wait before the next attempt.</summary>
        public ulong DurationMs { get; private set; }
        /// <summary>One line for a person.</summary>
        public string Message { get; private set; }
    }

    /// <summary>
    /// Routes native events to the sessions' delegates, with an id, never a managed pointer: an
    /// event that arrives after the session was disposed (a background fetch in flight) finds
    /// no entry and is dropped. A blocking call's events come through <see cref="Native"/> on
    /// the calling thread; those of library threads through the completion queue
    /// (<see cref="Completions"/>), so no managed code runs on a library thread.
    /// </summary>
    internal static class EventHub
    {
        [StructLayout(LayoutKind.Sequential)]
        private struct NativeEvent
        {
            public int Kind;
            public IntPtr Reason;
            public int Result;
            public ushort HttpStatus;
            public ulong DurationMs;
            public IntPtr Message;
        }

        internal static readonly NativeMethods.EventFn Native = (userData, nativeEvent) => Dispatch((ulong)userData.ToInt64(), nativeEvent);
        private static readonly ConcurrentDictionary<long, Action<Event>> Handlers = new ConcurrentDictionary<long, Action<Event>>();
        private static long nextId;

        internal static long Register(Action<Event> handler)
        {
            long id = Interlocked.Increment(ref nextId);
            Handlers[id] = handler;
            return id;
        }

        internal static void Unregister(long id)
        {
            Action<Event> ignored;
            Handlers.TryRemove(id, out ignored);
        }

        /// <summary>Runs on the calling thread or the completion thread, for each event.</summary>
        internal static void Dispatch(ulong tag, IntPtr nativeEvent)
        {
            try
            {
                Action<Event> handler;
                if (!Handlers.TryGetValue((long)tag, out handler))
                {
                    return;
                }
                NativeEvent e = (NativeEvent)Marshal.PtrToStructure(nativeEvent, typeof(NativeEvent));
                handler(new Event(e.Kind, Utf8.FromNative(e.Reason), (ResultCode)e.Result, e.HttpStatus, e.DurationMs, Utf8.FromNative(e.Message)));
            }
            catch (Exception)
            {
                // A failing handler loses its event only; nothing unwinds into native code.
            }
        }
    }
}
