using System;
using System.Collections.Concurrent;
using System.Collections.Generic;
using System.IO;
using System.Runtime.ExceptionServices;
using System.Runtime.InteropServices;
using System.Threading;

namespace CloudAuth
{
    // Streamed bodies (docs/streaming.md): a response body written to a Stream or read from one,
    // piece by piece, in the memory of one piece; a request body read from a Stream.
    public sealed partial class Session
    {
        /// <summary>
        /// <see cref="Send"/> with the response body written to <paramref name="destination"/>
        /// piece by piece as it arrives, instead of held in memory (a download of any size). The
        /// returned <see cref="Response"/> has the status and headers and an empty body.
        /// max_response_bytes caps the body (<see cref="TooLargeException"/>, no byte past the cap
        /// is written); timeout_ms bounds the whole exchange, the writes included. On an exception
        /// the caller discards what was written. An exception thrown by
        /// <paramref name="destination"/>'s Write stops the request and is rethrown as it was.
        /// </summary>
        /// <exception cref="ArgumentNullException">method, url or destination is null.</exception>
        /// <exception cref="ArgumentException">destination cannot be written.</exception>
        /// <exception cref="CloudAuthException">as for <see cref="Send"/>.</exception>
        public Response Download(string method, string url, Stream destination, IDictionary<string, string> headers = null, byte[] body = null)
        {
            if (destination == null)
            {
                throw new ArgumentNullException("destination");
            }
            if (!destination.CanWrite)
            {
                throw new ArgumentException("the destination stream cannot be written", "destination");
            }
            StreamCall call = new StreamCall(new NativeRequest(this, method, url, headers, body));
            call.Destination = destination;
            return call.Run();
        }

        /// <summary>
        /// <see cref="Send"/> with the request body read from <paramref name="body"/> piece by
        /// piece while the request is written, never held whole (an upload of any size). Its
        /// length is <paramref name="length"/> when given (-1: unknown), else the rest of the
        /// stream when it can seek; a known length is sent as Content-Length, an unknown one
        /// chunked. A resend (a 401 to a request that carried the token, a 307 or 308) puts a
        /// seekable stream back where it stood (<c>Seek</c>) and sends it again; a stream that
        /// cannot seek is not sent again: the 401 or the redirect is the answer. With
        /// <paramref name="destination"/> the response body is written there as it arrives (as
        /// <see cref="Download"/>), else it is held in the returned Response. An exception thrown
        /// by either stream stops the request and is rethrown as it was.
        /// </summary>
        /// <exception cref="ArgumentNullException">method, url or body is null.</exception>
        /// <exception cref="ArgumentException">body cannot be read, or destination written.</exception>
        /// <exception cref="InvalidArgumentException">the stream gave fewer or more bytes than its length.</exception>
        /// <exception cref="CloudAuthException">as for <see cref="Send"/>.</exception>
        public Response Upload(string method, string url, Stream body, IDictionary<string, string> headers = null,
            long? length = null, Stream destination = null)
        {
            if (body == null)
            {
                throw new ArgumentNullException("body");
            }
            if (!body.CanRead)
            {
                throw new ArgumentException("the body stream cannot be read", "body");
            }
            if (destination != null && !destination.CanWrite)
            {
                throw new ArgumentException("the destination stream cannot be written", "destination");
            }
            if (length.HasValue && length.Value < -1)
            {
                throw new ArgumentOutOfRangeException("length", "a length is a byte count, or -1 for unknown");
            }
            StreamCall call = new StreamCall(new NativeRequest(this, method, url, headers, null));
            call.Source = body;
            call.SourceStart = body.CanSeek ? body.Position : 0;
            call.SourceLength = length ?? (body.CanSeek ? body.Length - call.SourceStart : -1);
            call.Destination = destination;
            return call.Run();
        }

        /// <summary>
        /// Sends an authorized request and returns as soon as the final answer's status and
        /// headers have come (after any 401 resend and redirects); its <see cref="StreamedResponse.Body"/>
        /// is a read-only <see cref="Stream"/> fed piece by piece while the request runs on a worker
        /// thread (a bounded queue in between: a slow reader slows the download, and timeout_ms
        /// bounds the whole exchange, the reader's pace included). Disposing the response (or its
        /// Body) before the end stops the request; the session goes on working. A failure before
        /// the head throws here; one after it (too large, timeout, network) makes Body's Read throw
        /// an <see cref="IOException"/> whose InnerException is the <see cref="CloudAuthException"/>.
        /// </summary>
        /// <exception cref="CloudAuthException">as for <see cref="Send"/>, when it fails before the head.</exception>
        public StreamedResponse Open(string method, string url, IDictionary<string, string> headers = null, byte[] body = null)
        {
            // Bad input throws here, on the caller's thread, before the worker starts.
            StreamCall call = new StreamCall(new NativeRequest(this, method, url, headers, body));
            PieceStream pieces = new PieceStream();
            call.Pieces = pieces;
            HeadArrival head = new HeadArrival();
            call.OnHead = head.Set;
            Thread worker = new Thread(() =>
            {
                Exception failure = null;
                try
                {
                    head.Set(call.Run()); // a no-op when the head already came
                }
                catch (Exception e)
                {
                    failure = e;
                    head.Fail(e);
                }
                finally
                {
                    pieces.Complete(failure);
                }
            });
            worker.IsBackground = true;
            worker.Name = "cloudauth stream";
            worker.Start();
            try
            {
                return new StreamedResponse(head.Wait(), pieces);
            }
            catch
            {
                pieces.Dispose();
                throw;
            }
        }

        /// <summary>A request's arguments, checked and encoded for the library on the caller's thread.</summary>
        internal sealed class NativeRequest
        {
            internal readonly SessionHandle Handle;
            internal readonly byte[] Method;
            internal readonly byte[] Url;
            internal readonly List<byte[]> Headers;
            internal readonly byte[] Body;

            internal NativeRequest(Session session, string method, string url, IDictionary<string, string> headers, byte[] body)
            {
                Method = Utf8.ToNative(method, "method", "method");
                Url = Utf8.ToNative(url, "url", "url");
                Headers = HeaderLines(headers);
                Handle = session.Handle();
                Body = body != null && body.Length > 0 ? body : null;
            }

            internal T WithHeaders<T>(Func<IntPtr[], T> call)
            {
                return WithHeaderPointers(Headers, call);
            }
        }

        /// <summary>The head, or the failure that came first, handed from the worker to the caller.</summary>
        private sealed class HeadArrival
        {
            private readonly ManualResetEventSlim done = new ManualResetEventSlim(false);
            private Response head;
            private ExceptionDispatchInfo failure;

            internal void Set(Response response)
            {
                lock (done)
                {
                    if (!done.IsSet)
                    {
                        head = response;
                        done.Set();
                    }
                }
            }

            internal void Fail(Exception e)
            {
                lock (done)
                {
                    if (!done.IsSet)
                    {
                        failure = ExceptionDispatchInfo.Capture(e);
                        done.Set();
                    }
                }
            }

            internal Response Wait()
            {
                done.Wait();
                if (failure != null)
                {
                    failure.Throw();
                }
                return head;
            }
        }
    }

    /// <summary>
    /// The answer of <see cref="Session.Open"/>: status and headers at once, the body as a
    /// <see cref="Stream"/> fed while the request runs. Dispose it (or its Body) when done; before
    /// the end that stops the request.
    /// </summary>
    public sealed class StreamedResponse : IDisposable
    {
        private readonly Response head;
        private readonly Stream body;

        internal StreamedResponse(Response head, Stream body)
        {
            this.head = head;
            this.body = body;
        }

        /// <summary>The HTTP status code, e.g. 200 or 404.</summary>
        public int Status
        {
            get { return head.Status; }
        }

        /// <summary>True for a 2xx status.</summary>
        public bool IsSuccessStatusCode
        {
            get { return head.IsSuccessStatusCode; }
        }

        /// <summary>The response headers in the order received, looked up case-insensitively.</summary>
        public ResponseHeaders Headers
        {
            get { return head.Headers; }
        }

        /// <summary>The first value of header <paramref name="name"/> (any case), or null when absent.</summary>
        public string GetHeader(string name)
        {
            return head.GetHeader(name);
        }

        /// <summary>The body: read-only, not seekable, read to its end (Read returns 0) or disposed.</summary>
        public Stream Body
        {
            get { return body; }
        }

        /// <summary>Disposes the body: a request still running stops.</summary>
        public void Dispose()
        {
            body.Dispose();
        }
    }

    /// <summary>
    /// One streamed native call: the request, where its body pieces go, and the first exception a
    /// callback caught (it must not unwind into native code; it is rethrown once the call returns).
    /// The callbacks are static delegates, alive for the program's life; the call reaches them
    /// through a GCHandle that lives for the native call.
    /// </summary>
    internal sealed class StreamCall
    {
        private static readonly NativeMethods.HeadFn HeadCallback = OnHeadNative;
        private static readonly NativeMethods.WriteFn WriteCallback = OnWriteNative;
        private static readonly NativeMethods.ReadFn ReadCallback = OnReadNative;
        private static readonly NativeMethods.RewindFn RewindCallback = OnRewindNative;
        private static readonly IntPtr HeadPointer = Marshal.GetFunctionPointerForDelegate(HeadCallback);
        private static readonly IntPtr WritePointer = Marshal.GetFunctionPointerForDelegate(WriteCallback);
        private static readonly IntPtr ReadPointer = Marshal.GetFunctionPointerForDelegate(ReadCallback);
        private static readonly IntPtr RewindPointer = Marshal.GetFunctionPointerForDelegate(RewindCallback);

        private readonly Session.NativeRequest request;
        private ExceptionDispatchInfo failure;
        private byte[] buffer;

        internal Stream Source;           // Upload: the request body is read from here
        internal long SourceStart;        // where a rewind puts it
        internal long SourceLength;       // bytes, or -1: unknown
        internal Stream Destination;      // Download (or Upload to a stream): each piece is written here
        internal PieceStream Pieces;      // Open: each piece is queued here
        internal Action<Response> OnHead; // null: no head callback

        internal StreamCall(Session.NativeRequest request)
        {
            this.request = request;
        }

        /// <summary>Makes the native call on this thread; the final answer's status and headers.</summary>
        internal Response Run()
        {
            return request.WithHeaders(pointers =>
            {
                GCHandle self = GCHandle.Alloc(this);
                try
                {
                    NativeMethods.BodySink sink = new NativeMethods.BodySink
                    {
                        Head = OnHead != null ? HeadPointer : IntPtr.Zero,
                        Write = WritePointer,
                        UserData = GCHandle.ToIntPtr(self),
                    };
                    ResponseHandle response;
                    int result;
                    string function;
                    if (Source == null)
                    {
                        function = "cloudauth_session_request_stream";
                        result = NativeMethods.cloudauth_session_request_stream(
                            request.Handle, request.Method, request.Url, pointers, (UIntPtr)request.Headers.Count,
                            request.Body, (UIntPtr)(request.Body != null ? request.Body.Length : 0), ref sink, out response);
                    }
                    else
                    {
                        function = "cloudauth_session_request_stream_body";
                        NativeMethods.BodySource source = new NativeMethods.BodySource
                        {
                            Read = ReadPointer,
                            Rewind = Source.CanSeek ? RewindPointer : IntPtr.Zero,
                            UserData = sink.UserData,
                            Length = SourceLength,
                        };
                        result = Destination != null || Pieces != null
                            ? NativeMethods.cloudauth_session_request_stream_body(
                                request.Handle, request.Method, request.Url, pointers, (UIntPtr)request.Headers.Count,
                                ref source, ref sink, out response)
                            : NativeMethods.cloudauth_session_request_stream_body(
                                request.Handle, request.Method, request.Url, pointers, (UIntPtr)request.Headers.Count,
                                ref source, IntPtr.Zero, out response);
                    }
                    using (response)
                    {
                        // The message is the thread's last error: read before anything else runs.
                        CloudAuthException error = result != (int)ResultCode.Ok ? Ensure.Error(result, function) : null;
                        if (failure != null)
                        {
                            failure.Throw(); // the callback's own exception: the library saw only "stop"
                        }
                        if (error != null)
                        {
                            throw error;
                        }
                        return Response.Read(response);
                    }
                }
                finally
                {
                    self.Free();
                    GC.KeepAlive(HeadCallback);
                    GC.KeepAlive(WriteCallback);
                    GC.KeepAlive(ReadCallback);
                    GC.KeepAlive(RewindCallback);
                }
            });
        }

        /// <summary>
        /// Runs a callback's work for the call behind <paramref name="userData"/>; an exception
        /// is kept for Run to rethrow, and the native side gets <paramref name="failed"/> (stop).
        /// </summary>
        private static T Guarded<T>(IntPtr userData, Func<StreamCall, T> work, T failed)
        {
            StreamCall call = null;
            try
            {
                call = (StreamCall)GCHandle.FromIntPtr(userData).Target;
                return work(call);
            }
            catch (Exception e)
            {
                if (call != null)
                {
                    call.failure = ExceptionDispatchInfo.Capture(e);
                }
                return failed;
            }
        }

        private static int OnHeadNative(IntPtr userData, IntPtr head)
        {
            return Guarded(userData, call =>
            {
                call.OnHead(Response.ReadHead(head));
                return 0;
            }, 1);
        }

        private static UIntPtr OnReadNative(IntPtr userData, IntPtr buf, UIntPtr cap)
        {
            return Guarded(userData, call => call.Read(buf, cap), NativeMethods.ReadFailed);
        }

        private static int OnRewindNative(IntPtr userData)
        {
            return Guarded(userData, call =>
            {
                call.Source.Seek(call.SourceStart, SeekOrigin.Begin);
                return 0;
            }, 1);
        }

        private static int OnWriteNative(IntPtr userData, IntPtr data, UIntPtr len)
        {
            return Guarded(userData, call => call.Write(data, len) ? 0 : 1, 1);
        }

        private UIntPtr Read(IntPtr buf, UIntPtr cap)
        {
            int room = (int)Math.Min(cap.ToUInt64(), 64 * 1024);
            if (buffer == null || buffer.Length < room)
            {
                buffer = new byte[64 * 1024];
            }
            int n = Source.Read(buffer, 0, room);
            if (n < 0 || n > room)
            {
                throw new InvalidOperationException("the body stream's Read returned " + n + " for a buffer of " + room);
            }
            Marshal.Copy(buffer, 0, buf, n);
            return (UIntPtr)n;
        }

        /// <summary>One piece of the response body; false stops the request (the reader has gone).</summary>
        private bool Write(IntPtr data, UIntPtr len)
        {
            int n = checked((int)len.ToUInt64());
            if (Pieces != null)
            {
                byte[] piece = new byte[n]; // handed over to the reader: one array per piece
                Marshal.Copy(data, piece, 0, n);
                return Pieces.Put(piece);
            }
            if (buffer == null || buffer.Length < n)
            {
                buffer = new byte[Math.Max(n, 64 * 1024)];
            }
            Marshal.Copy(data, buffer, 0, n);
            Destination.Write(buffer, 0, n);
            return true;
        }
    }

    /// <summary>
    /// The body stream of <see cref="StreamedResponse"/>: pieces queued by the worker thread (at
    /// most <see cref="Capacity"/> waiting, so the download keeps the reader's pace), read in order.
    /// </summary>
    internal sealed class PieceStream : Stream
    {
        private const int Capacity = 4;

        private readonly BlockingCollection<byte[]> pieces = new BlockingCollection<byte[]>(new ConcurrentQueue<byte[]>(), Capacity);
        private readonly CancellationTokenSource closed = new CancellationTokenSource();
        private volatile Exception failure;
        private volatile bool disposed;
        private byte[] current;
        private int position;

        /// <summary>Worker side: queues a piece; false once the reader has gone (stop the request).</summary>
        internal bool Put(byte[] piece)
        {
            if (disposed)
            {
                return false;
            }
            try
            {
                pieces.Add(piece, closed.Token);
                return true;
            }
            catch (OperationCanceledException)
            {
                return false;
            }
        }

        /// <summary>Worker side: the call is over, with <paramref name="error"/> or (null) the whole body.</summary>
        internal void Complete(Exception error)
        {
            failure = error;
            pieces.CompleteAdding();
        }

        public override int Read(byte[] buffer, int offset, int count)
        {
            if (buffer == null)
            {
                throw new ArgumentNullException("buffer");
            }
            if (offset < 0 || count < 0 || count > buffer.Length - offset)
            {
                throw new ArgumentOutOfRangeException("count", "offset and count must lie within the buffer");
            }
            if (disposed)
            {
                throw new ObjectDisposedException(typeof(StreamedResponse).FullName);
            }
            if (count == 0)
            {
                return 0;
            }
            while (current == null || position == current.Length)
            {
                byte[] next;
                bool more = pieces.TryTake(out next, Timeout.Infinite);
                // A failure ends the body at once: pieces still queued belong to a body that
                // will never be whole.
                Exception error = failure;
                if (error != null)
                {
                    throw new IOException("the streamed response failed: " + error.Message, error);
                }
                if (!more)
                {
                    return 0;
                }
                current = next;
                position = 0;
            }
            int n = Math.Min(count, current.Length - position);
            Buffer.BlockCopy(current, position, buffer, offset, n);
            position += n;
            return n;
        }

        protected override void Dispose(bool disposing)
        {
            if (disposing && !disposed)
            {
                disposed = true;
                closed.Cancel(); // a worker blocked in Put returns false: the request stops
            }
            base.Dispose(disposing);
        }

        public override bool CanRead
        {
            get { return !disposed; }
        }

        public override bool CanSeek
        {
            get { return false; }
        }

        public override bool CanWrite
        {
            get { return false; }
        }

        public override long Length
        {
            get { throw new NotSupportedException("a streamed response body has no known length"); }
        }

        public override long Position
        {
            get { throw new NotSupportedException("a streamed response body cannot seek"); }
            set { throw new NotSupportedException("a streamed response body cannot seek"); }
        }

        public override void Flush()
        {
        }

        public override long Seek(long offset, SeekOrigin origin)
        {
            throw new NotSupportedException("a streamed response body cannot seek");
        }

        public override void SetLength(long value)
        {
            throw new NotSupportedException("a streamed response body is read-only");
        }

        public override void Write(byte[] buffer, int offset, int count)
        {
            throw new NotSupportedException("a streamed response body is read-only");
        }
    }
}
