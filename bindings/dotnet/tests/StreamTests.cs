using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.IO;
using System.Net.Http;
using System.Threading;

namespace CloudAuth.Tests
{
    /// <summary>Streamed bodies (docs/streaming.md): Session.Download, Session.Open, Session.Upload and the handler's streams.</summary>
    public static partial class Tests
    {
        /// <summary><paramref name="n"/> bytes that are not all alike (a piece out of order or lost shows).</summary>
        private static byte[] Pattern(int n)
        {
            byte[] data = new byte[n];
            for (int i = 0; i < n; i++)
            {
                data[i] = (byte)(i * 7 + i / 251);
            }
            return data;
        }

        /// <summary>A write-only stream that records each Write (or throws on the first).</summary>
        private sealed class RecordingStream : MemoryStream
        {
            public int Writes;
            public bool Throw;

            public override void Write(byte[] buffer, int offset, int count)
            {
                Writes++;
                if (Throw)
                {
                    throw new InvalidDataException("destination says Zq9-no");
                }
                base.Write(buffer, offset, count);
            }
        }

        [Test]
        public static void DownloadWritesEveryPieceInOrder()
        {
            byte[] payload = Pattern(300 * 1024);
            using (Session session = NewSession())
            {
                RecordingStream sink = new RecordingStream();
                Response r = session.Download("POST", "/echo?d=1", sink, null, payload);
                Assert.Equal(200, r.Status, "status");
                Assert.Equal(0, r.Body.Length, "the Response holds no body");
                Assert.Equal("POST", r.GetHeader("x-echo-method"), "headers of the final answer");
                Assert.Bytes(payload, sink.ToArray(), "the body, byte for byte, in order");
                Assert.True(sink.Writes >= 2, "written piece by piece (" + sink.Writes + " writes)");

                // any status is an answer; its body streams too
                MemoryStream notFound = new MemoryStream();
                Assert.Equal(404, session.Download("GET", "/nowhere", notFound).Status, "404");
                Assert.Contains("not_found", System.Text.Encoding.UTF8.GetString(notFound.ToArray()), "404 body");
                Assert.Throws<ArgumentNullException>(() => session.Download("GET", "/big?bytes=1", null), "null destination");
            }
        }

        [Test]
        public static void DownloadToAThrowingStreamRethrowsItAndTheSessionGoesOn()
        {
            using (Session session = NewSession())
            {
                RecordingStream sink = new RecordingStream { Throw = true };
                InvalidDataException e = Assert.Throws<InvalidDataException>(
                    () => session.Download("GET", "/big?bytes=300000", sink), "Download");
                Assert.Equal("destination says Zq9-no", e.Message, "the stream's own exception");
                Assert.Equal(1, sink.Writes, "stopped at the first piece");
                Assert.Equal(200, session.Send("GET", "/headers").Status, "the session goes on");
            }
        }

        [Test]
        public static void DownloadOverTheCapIsTooLarge()
        {
            using (Session session = NewSession("max_response_bytes", "100000"))
            {
                MemoryStream sink = new MemoryStream();
                CheckError(Assert.Throws<TooLargeException>(() => session.Download("GET", "/big?bytes=500000", sink), "Download"),
                    ResultCode.TooLarge);
                Assert.True(sink.Length <= 100000, "nothing past the cap was written");
            }
        }

        [Test]
        public static void OpenGivesTheHeadThenTheBodyAsAStream()
        {
            byte[] payload = Pattern(400 * 1024);
            using (Session session = NewSession())
            {
                using (StreamedResponse r = session.Open("POST", "/echo", null, payload))
                {
                    Assert.Equal(200, r.Status, "status, before any body byte is read");
                    Assert.Equal("POST", r.GetHeader("X-Echo-Method"), "headers");
                    Assert.True(!r.Body.CanSeek && r.Body.CanRead, "a read-only stream");
                    MemoryStream got = new MemoryStream();
                    r.Body.CopyTo(got, 1000);
                    Assert.Bytes(payload, got.ToArray(), "every byte, in order");
                    Assert.Equal(0, r.Body.Read(new byte[10], 0, 10), "then the end");
                }
                // a failure before the head throws from Open itself
                using (Session wrong = NewSession("client_secret", "wrong"))
                {
                    CheckError(Assert.Throws<AuthRejectedException>(() => wrong.Open("GET", "/headers"), "Open"), ResultCode.AuthRejected);
                }
            }
        }

        [Test]
        public static void OpenDisposedEarlyStopsTheRequestAndTheSessionGoesOn()
        {
            using (Session session = NewSession())
            {
                StreamedResponse r = session.Open("GET", "/big?bytes=50000000");
                byte[] buffer = new byte[1000];
                Assert.Equal(1000, ReadFully(r.Body, buffer), "the first bytes");
                Assert.Equal((byte)'a', buffer[999], "the body");
                r.Dispose();
                Assert.Throws<ObjectDisposedException>(() => r.Body.Read(buffer, 0, 10), "Read after Dispose");
                // the session is not held up by the stopped download
                using (StreamedResponse next = session.Open("GET", "/big?bytes=20"))
                {
                    Assert.Equal(20, ReadFully(next.Body, new byte[20]), "a new streamed request");
                }
                Assert.Equal(200, session.Send("GET", "/headers").Status, "and a whole one");
            }
        }

        [Test]
        public static void OpenSlowReaderPastTheDeadlineFailsTheRead()
        {
            using (Session session = NewSession("timeout_ms", "400"))
            {
                session.GetToken();
                using (StreamedResponse r = session.Open("GET", "/big?bytes=5000000"))
                {
                    Assert.Equal(200, r.Status, "the head came in time");
                    byte[] buffer = new byte[16384];
                    Stopwatch clock = Stopwatch.StartNew();
                    IOException e = Assert.Throws<IOException>(() =>
                    {
                        while (r.Body.Read(buffer, 0, buffer.Length) > 0)
                        {
                            Thread.Sleep(20);
                        }
                    }, "reading slowly");
                    Assert.True(e.InnerException is CloudAuthTimeoutException, "the library's timeout inside: " + e.InnerException);
                    // reading it all at this pace takes over 6 s: the deadline cut it short
                    Assert.True(clock.ElapsedMilliseconds < 4000, "failed mid-stream, after " + clock.ElapsedMilliseconds + " ms");
                }
                Assert.Equal(200, session.Send("GET", "/headers").Status, "the session goes on");
            }
        }

        /// <summary>A readable stream whose Read throws.</summary>
        private sealed class FailingStream : MemoryStream
        {
            public FailingStream() : base(new byte[100])
            {
            }

            public override int Read(byte[] buffer, int offset, int count)
            {
                throw new EndOfStreamException("source says Zq9-no");
            }
        }

        [Test]
        public static void UploadOfKnownAndUnknownLength()
        {
            byte[] payload = Pattern(200 * 1024);
            using (Session session = NewSession())
            {
                Response r = session.Upload("PUT", "/echo", new MemoryStream(payload));
                Assert.Equal(200, r.Status, "status");
                Assert.Bytes(payload, r.Body, "the server got every byte, in order");
                List<Dictionary<string, object>> log = ApiLog();
                Assert.Equal("204800", (string)((Dictionary<string, object>)log[0]["headers"])["content-length"], "Content-Length from the stream");

                r = session.Upload("POST", "/echo", new OneShotStream(payload));
                Assert.Bytes(payload, r.Body, "a stream that cannot seek, sent chunked");
                Assert.Equal("chunked", (string)((Dictionary<string, object>)ApiLog()[1]["headers"])["transfer-encoding"], "chunked");

                // from where the stream stands; with the response written to a stream as well
                MemoryStream source = new MemoryStream(payload);
                source.Position = 1000;
                MemoryStream sink = new MemoryStream();
                r = session.Upload("POST", "/echo", source, null, null, sink);
                Assert.Equal(0, r.Body.Length, "the body went to the destination");
                byte[] rest = new byte[payload.Length - 1000];
                Array.Copy(payload, 1000, rest, 0, rest.Length);
                Assert.Bytes(rest, sink.ToArray(), "the rest of the stream, echoed into the destination");

                CheckError(Assert.Throws<InvalidArgumentException>(
                    () => session.Upload("POST", "/echo", new MemoryStream(new byte[10]), null, 100), "a length the stream does not have"),
                    ResultCode.InvalidArgument);
                Assert.Throws<ArgumentNullException>(() => session.Upload("POST", "/echo", null), "null body");
                Assert.Equal(200, session.Send("GET", "/headers").Status, "the session goes on");
            }
        }

        [Test]
        public static void UploadOfASeekableStreamIsRewoundAfterA401AndA307()
        {
            byte[] payload = Pattern(50000);
            using (Session session = NewSession())
            {
                session.GetToken();
                standin.Revoke();
                Response r = session.Upload("POST", "/echo", new MemoryStream(payload));
                Assert.Equal(200, r.Status, "resent with a new token");
                Assert.Bytes(payload, r.Body, "the whole body, again");
                List<Dictionary<string, object>> log = ApiLog();
                Assert.Equal(2, log.Count, "sent twice");
                Assert.Equal(false, (bool)log[0]["authorized"], "first: the 401");
                Assert.Equal("50000", (string)((Dictionary<string, object>)log[0]["headers"])["content-length"], "first send's body");
                Assert.Equal("50000", (string)((Dictionary<string, object>)log[1]["headers"])["content-length"], "second send's body");

                string redirect = "/redirect?code=307&to=" + Uri.EscapeDataString(standin.Url + "/echo");
                r = session.Upload("POST", redirect, new MemoryStream(payload));
                Assert.Equal(200, r.Status, "the 307 followed");
                Assert.Bytes(payload, r.Body, "the whole body after the 307");
                Assert.Equal(4, ApiLog().Count, "the redirect and the echo");
            }
        }

        [Test]
        public static void UploadOfAOneShotStreamIsNotResent()
        {
            byte[] payload = Pattern(5000);
            using (Session session = NewSession())
            {
                session.GetToken();
                standin.Revoke();
                Response r = session.Upload("POST", "/echo", new OneShotStream(payload));
                Assert.Equal(401, r.Status, "the 401 is the answer");
                Assert.Equal(1, ApiLog().Count, "one request sent");
                Assert.Equal(1, standin.Stat("token_requests"), "no token fetched for a resend");
                Assert.Equal(200, session.Send("GET", "/headers").Status, "the next request, with a new token");
                Assert.Equal(2, standin.Stat("token_requests"), "the rejected token was dropped");

                string redirect = "/redirect?code=307&to=" + Uri.EscapeDataString(standin.Url + "/echo");
                Assert.Equal(307, session.Upload("POST", redirect, new OneShotStream(payload)).Status, "the 307 is the answer");
            }
        }

        [Test]
        public static void UploadFromAThrowingStreamRethrowsIt()
        {
            using (Session session = NewSession())
            {
                EndOfStreamException e = Assert.Throws<EndOfStreamException>(
                    () => session.Upload("POST", "/echo", new FailingStream()), "Upload");
                Assert.Equal("source says Zq9-no", e.Message, "the stream's own exception");
                Assert.Equal(200, session.Send("GET", "/headers").Status, "the session goes on");
            }
        }

        private static int ReadFully(Stream s, byte[] buffer)
        {
            int total = 0;
            while (total < buffer.Length)
            {
                int n = s.Read(buffer, total, buffer.Length - total);
                if (n == 0)
                {
                    break;
                }
                total += n;
            }
            return total;
        }
    }
}
