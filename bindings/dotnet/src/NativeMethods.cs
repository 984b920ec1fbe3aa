using System;
using System.Runtime.InteropServices;

namespace CloudAuth
{
    /// <summary>
    /// The C ABI of libcloudauth (include/cloudauth.h), one declaration per function and nothing
    /// else. Strings go in as NUL-terminated UTF-8 byte arrays (see <see cref="Utf8"/>); strings
    /// coming out are <c>IntPtr</c>s that <see cref="Utf8.FromNative"/> decodes. <c>size_t</c> is
    /// <see cref="UIntPtr"/>. Handles are <see cref="SafeHandle"/>s, so a handle cannot be freed
    /// while a call that uses it is still running on another thread.
    /// </summary>
    internal static class NativeMethods
    {
        // "cloudauth" resolves to libcloudauth.so (Linux), libcloudauth.dylib (macOS) and
        // cloudauth.dll (Windows) on both Mono and .NET.
        private const string Lib = "cloudauth";

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern IntPtr cloudauth_version();

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern IntPtr cloudauth_result_name(int result);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern IntPtr cloudauth_last_error();

        // --- config ---------------------------------------------------------------------

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern ConfigHandle cloudauth_config_new();

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern int cloudauth_config_set(ConfigHandle cfg, byte[] key, byte[] value);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern void cloudauth_config_free(IntPtr cfg);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern int cloudauth_config_from_env(ConfigHandle cfg, byte[] prefix);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern int cloudauth_config_set_event_queue(ConfigHandle cfg, IntPtr queue, ulong tag);

        // With the event queue also set, the library calls this only on the caller's thread
        // (a managed thread, during a blocking call), never on a library thread.
        [UnmanagedFunctionPointer(CallingConvention.Cdecl)]
        internal delegate void EventFn(IntPtr userData, IntPtr nativeEvent);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern int cloudauth_config_set_event_callback(ConfigHandle cfg, EventFn fn, IntPtr userData);

        // --- session --------------------------------------------------------------------

        // The async calls use the completion-queue forms: no managed code ever runs on a
        // library thread (Mono waits at exit for such threads, and crashes when one enters
        // managed code during shutdown). See Completions.
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern int cloudauth_session_request_queued(
            SessionHandle session, byte[] method, byte[] url, IntPtr[] headers, UIntPtr nHeaders,
            byte[] body, UIntPtr bodyLen, IntPtr queue, ulong tag, out IntPtr op);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern int cloudauth_session_token_queued(SessionHandle session, IntPtr queue, ulong tag, out IntPtr op);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern IntPtr cloudauth_queue_new();

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern int cloudauth_queue_wait(IntPtr queue, int timeoutMs, out IntPtr completion);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern void cloudauth_completion_free(IntPtr completion);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern int cloudauth_session_token_cached(
            SessionHandle session, byte[] buf, UIntPtr bufLen, out UIntPtr tokenLen);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern void cloudauth_op_cancel(IntPtr op);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern void cloudauth_op_free(IntPtr op);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern int cloudauth_session_set_credentials(SessionHandle session, byte[] clientId, byte[] clientSecret);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern int cloudauth_session_stats(SessionHandle session, out NativeStats stats, UIntPtr size);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern int cloudauth_session_new(ConfigHandle cfg, out SessionHandle session);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern int cloudauth_session_token(
            SessionHandle session, byte[] buf, UIntPtr bufLen, out UIntPtr tokenLen);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern int cloudauth_session_token_expires_in(SessionHandle session, out ulong seconds);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern int cloudauth_session_invalidate(SessionHandle session);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern int cloudauth_session_invalidate_token(SessionHandle session, byte[] token);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern int cloudauth_session_check_url(SessionHandle session, byte[] url);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern IntPtr cloudauth_session_origin(SessionHandle session);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern int cloudauth_session_request(
            SessionHandle session,
            byte[] method,
            byte[] url,
            IntPtr[] headers,
            UIntPtr nHeaders,
            byte[] body,
            UIntPtr bodyLen,
            out ResponseHandle response);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern void cloudauth_session_free(IntPtr session);

        // --- streamed bodies (docs/streaming.md) -----------------------------------------
        // The callbacks run on the thread that made the call, during the call only.

        [UnmanagedFunctionPointer(CallingConvention.Cdecl)]
        internal delegate int HeadFn(IntPtr userData, IntPtr head);

        [UnmanagedFunctionPointer(CallingConvention.Cdecl)]
        internal delegate int WriteFn(IntPtr userData, IntPtr data, UIntPtr len);

        /// <summary><c>cloudauth_body_sink</c>: function pointers and the caller's user_data.</summary>
        [StructLayout(LayoutKind.Sequential)]
        internal struct BodySink
        {
            public IntPtr Head;
            public IntPtr Write;
            public IntPtr UserData;
        }

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern int cloudauth_session_request_stream(
            SessionHandle session, byte[] method, byte[] url, IntPtr[] headers, UIntPtr nHeaders,
            byte[] body, UIntPtr bodyLen, ref BodySink sink, out ResponseHandle response);

        [UnmanagedFunctionPointer(CallingConvention.Cdecl)]
        internal delegate UIntPtr ReadFn(IntPtr userData, IntPtr buf, UIntPtr cap);

        [UnmanagedFunctionPointer(CallingConvention.Cdecl)]
        internal delegate int RewindFn(IntPtr userData);

        /// <summary><c>cloudauth_body_source</c>.</summary>
        [StructLayout(LayoutKind.Sequential)]
        internal struct BodySource
        {
            public IntPtr Read;
            public IntPtr Rewind;
            public IntPtr UserData;
            public long Length; // bytes, or -1: unknown (sent chunked)
        }

        /// <summary>CLOUDAUTH_READ_FAILED, <c>(size_t)-1</c>.</summary>
        internal static readonly UIntPtr ReadFailed = UIntPtr.Size == 8 ? new UIntPtr(ulong.MaxValue) : new UIntPtr(uint.MaxValue);

        // `sink` by reference, or (the overload below) NULL for the whole response in `response`.
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern int cloudauth_session_request_stream_body(
            SessionHandle session, byte[] method, byte[] url, IntPtr[] headers, UIntPtr nHeaders,
            ref BodySource body, ref BodySink sink, out ResponseHandle response);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern int cloudauth_session_request_stream_body(
            SessionHandle session, byte[] method, byte[] url, IntPtr[] headers, UIntPtr nHeaders,
            ref BodySource body, IntPtr noSink, out ResponseHandle response);

        // --- response -------------------------------------------------------------------

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern ushort cloudauth_response_status(ResponseHandle response);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern IntPtr cloudauth_response_body(ResponseHandle response, out UIntPtr len);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern IntPtr cloudauth_response_header(ResponseHandle response, byte[] name);


        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern void cloudauth_response_free(IntPtr response);

        // A response the library lends during a callback (a streamed answer's head).
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl, EntryPoint = "cloudauth_response_status")]
        internal static extern ushort cloudauth_response_status_lent(IntPtr response);

        // The header accessors take the bare pointer (a ResponseHandle is held by its caller).
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern UIntPtr cloudauth_response_header_count(IntPtr response);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern int cloudauth_response_header_at(
            IntPtr response, UIntPtr index, out IntPtr name, out IntPtr value);
    }
}
