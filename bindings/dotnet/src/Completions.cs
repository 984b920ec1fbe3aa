using System;
using System.Runtime.InteropServices;
using System.Threading;

namespace CloudAuth
{
    /// <summary>
    /// The process's one completion queue and the thread that empties it. Every async
    /// operation and every event of this binding is delivered here
    /// (<c>cloudauth_session_*_queued</c>, <c>cloudauth_config_set_event_queue</c>), so managed
    /// code never runs on a library thread: Mono waits at exit for any foreign thread that ever
    /// ran managed code, and crashes when one enters managed code while it shuts down.
    /// </summary>
    /// <remarks>
    /// The thread is a background thread that waits in <c>cloudauth_queue_wait</c>; the runtime's
    /// interrupt signal at exit ends that wait, so the process exits promptly. Task
    /// continuations run on the thread pool (RunContinuationsAsynchronously), never here; event
    /// handlers run here, one at a time, so they must return quickly.
    /// </remarks>
    internal static class Completions
    {
        [StructLayout(LayoutKind.Sequential)]
        private struct NativeCompletion
        {
            public ulong Tag;
            public int Result;
            public IntPtr Response;
            public IntPtr Token;
            public UIntPtr TokenLen;
            public IntPtr Error;
            public IntPtr Event;
        }

        private static readonly Lazy<IntPtr> queue = new Lazy<IntPtr>(Start, LazyThreadSafetyMode.ExecutionAndPublication);

        /// <summary>The queue (made, and its thread started, on first use; kept for the process).</summary>
        internal static IntPtr Queue
        {
            get { return queue.Value; }
        }

        private static IntPtr Start()
        {
            IntPtr q = NativeMethods.cloudauth_queue_new();
            if (q == IntPtr.Zero)
            {
                throw Ensure.Error((int)ResultCode.Internal, "cloudauth_queue_new");
            }
            Thread pump = new Thread(() => Run(q));
            pump.IsBackground = true;
            pump.Name = "cloudauth completions";
            pump.Start();
            return q;
        }

        private static void Run(IntPtr q)
        {
            while (true)
            {
                IntPtr completion;
                int rc = NativeMethods.cloudauth_queue_wait(q, -1, out completion);
                if (rc == (int)ResultCode.Timeout)
                {
                    continue; // a signal ended the wait: wait again
                }
                if (rc != (int)ResultCode.Ok)
                {
                    Thread.Sleep(10); // cannot happen with a live queue; never spin
                    continue;
                }
                try
                {
                    NativeCompletion c = (NativeCompletion)Marshal.PtrToStructure(completion, typeof(NativeCompletion));
                    if (c.Event != IntPtr.Zero)
                    {
                        EventHub.Dispatch(c.Tag, c.Event);
                    }
                    else
                    {
                        AsyncOps.Finish(c.Tag, c.Result, c.Response, c.Token, c.TokenLen, c.Error);
                    }
                }
                finally
                {
                    NativeMethods.cloudauth_completion_free(completion);
                }
            }
        }
    }
}
