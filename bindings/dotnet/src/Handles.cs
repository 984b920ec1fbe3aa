using System;
using System.Runtime.InteropServices;

namespace CloudAuth
{
    /// <summary>
    /// Base of the three handle kinds: an owned native pointer, freed exactly once by the
    /// matching <c>_free</c> function (on Dispose, or by the finalizer if the owner forgot).
    /// The P/Invoke marshaler AddRefs a SafeHandle for the length of each call, so disposing a
    /// session while another thread is inside <c>cloudauth_session_request</c> defers the free
    /// until that call returns, and a call after Dispose throws ObjectDisposedException instead
    /// of passing a dangling pointer.
    /// </summary>
    internal abstract class CloudAuthHandle : SafeHandle
    {
        protected CloudAuthHandle() : base(IntPtr.Zero, true)
        {
        }

        public override bool IsInvalid
        {
            get { return handle == IntPtr.Zero; }
        }
    }

    /// <summary><c>cloudauth_config *</c>: single owner, not thread-safe.</summary>
    internal sealed class ConfigHandle : CloudAuthHandle
    {
        protected override bool ReleaseHandle()
        {
            NativeMethods.cloudauth_config_free(handle);
            return true;
        }
    }

    /// <summary><c>cloudauth_session *</c>: thread-safe, shared.</summary>
    internal sealed class SessionHandle : CloudAuthHandle
    {
        protected override bool ReleaseHandle()
        {
            NativeMethods.cloudauth_session_free(handle);
            return true;
        }
    }

    /// <summary><c>cloudauth_response *</c>: immutable, owned until freed.</summary>
    internal sealed class ResponseHandle : CloudAuthHandle
    {
        /// <summary>Takes ownership of a response a completion was handed.</summary>
        internal static ResponseHandle Own(IntPtr response)
        {
            ResponseHandle h = new ResponseHandle();
            h.SetHandle(response);
            return h;
        }

        protected override bool ReleaseHandle()
        {
            NativeMethods.cloudauth_response_free(handle);
            return true;
        }
    }
}
