package dev.cloudauth;

import static org.junit.jupiter.api.Assertions.*;

import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.time.Duration;
import java.util.Collections;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * Streamed bodies (docs/streaming.md) through Session.upload / download / stream, against the
 * stand-in (and the hostile server for an endless chunked body).
 */
class StreamTest {
    private static final int MIB = 1 << 20;
    private static final Map<String, String> NONE = Collections.emptyMap();

    @BeforeEach
    void reset() {
        Servers.reset();
    }

    static byte[] data(int n) {
        byte[] b = new byte[n];
        new Random(n).nextBytes(b);
        return b;
    }

    /** The request headers the stand-in logged for the request whose path contains {@code marker}. */
    static String loggedHeaders(String marker) {
        String stats = Servers.stats();
        int at = stats.lastIndexOf(marker);
        assertTrue(at >= 0, "no request " + marker + " in the stand-in's log");
        int end = stats.indexOf("\"authorized\"", at);
        return stats.substring(at, end);
    }

    /** The live heap after a full collection (SerialGC: exact enough to tell 1 MiB from 64). */
    static long heapUsed() {
        Runtime rt = Runtime.getRuntime();
        System.gc();
        return rt.totalMemory() - rt.freeMemory();
    }

    /** An InputStream of {@code n} bytes made on the fly, opened {@code opens} times. */
    static BodySource.Opener counting(byte[] bytes, AtomicInteger opens) {
        return () -> {
            opens.incrementAndGet();
            return new ByteArrayInputStream(bytes);
        };
    }

    @Test
    void uploadsOfKnownAndUnknownLengthAreEchoed() throws Exception {
        byte[] body = data(3 * MIB + 17);
        try (Session s = new Session(Servers.standinConfig().build())) {
            Response known = s.upload("PUT", "/echo?case=known", NONE, BodySource.of(new ByteArrayInputStream(body), body.length));
            assertEquals(200, known.status());
            assertArrayEquals(body, known.body());
            String h = loggedHeaders("case=known");
            assertTrue(h.contains("\"content-length\": \"" + body.length + "\""), h);
            assertFalse(h.contains("transfer-encoding"), h);

            Response chunked = s.upload("POST", "/echo?case=chunked", NONE, BodySource.of(new ByteArrayInputStream(body), -1));
            assertArrayEquals(body, chunked.body());
            h = loggedHeaders("case=chunked");
            assertTrue(h.contains("\"transfer-encoding\": \"chunked\""), h);

            // A one-shot body goes once: a second request with it is refused before sending.
            BodySource once = BodySource.of(new ByteArrayInputStream(body), body.length);
            s.upload("PUT", "/echo", NONE, once);
            InvalidArgumentException e = assertThrows(InvalidArgumentException.class, () -> s.upload("PUT", "/echo", NONE, once));
            assertTrue(e.getMessage().contains("already sent"), e.getMessage());
            assertThrows(InvalidArgumentException.class, () -> BodySource.of(new ByteArrayInputStream(body), -2));
        }
    }

    @Test
    void aSourceThatDisagreesWithItsLengthFailsTheRequest() throws Exception {
        byte[] body = data(1000);
        try (Session s = new Session(Servers.standinConfig().build())) {
            s.token();
            InvalidArgumentException shorter = assertThrows(InvalidArgumentException.class,
                    () -> s.upload("PUT", "/echo", NONE, BodySource.of(new ByteArrayInputStream(body), 2000)));
            assertTrue(shorter.getMessage().contains("1000"), shorter.getMessage());
            assertThrows(InvalidArgumentException.class,
                    () -> s.upload("PUT", "/echo", NONE, BodySource.of(new ByteArrayInputStream(body), 999)));
            assertEquals(0, Servers.apiRequests(), "no complete request reached the server");
        }
    }

    @Test
    void aReplayableBodyIsReopenedAndResentAfterA401AndA307() throws Exception {
        byte[] body = data(2 * MIB + 3);
        AtomicInteger opens = new AtomicInteger();
        try (Session s = new Session(Servers.standinConfig().build())) {
            String before = s.token();
            Servers.revoke();
            Response r = s.upload("PUT", "/echo", NONE, BodySource.reopening(counting(body, opens), body.length));
            assertEquals(200, r.status());
            assertArrayEquals(body, r.body());
            assertEquals(2, opens.get(), "opened for the send and the resend");
            assertNotEquals(before, s.token());
            assertEquals(1, Servers.number(Servers.stats(), "unauthorized"));
            assertEquals(2, Servers.tokenRequests());

            opens.set(0);
            String to = Servers.standin() + "/echo?after=307";
            r = s.upload("POST", "/redirect?code=307&to=" + to, NONE, BodySource.reopening(counting(body, opens), -1));
            assertEquals(200, r.status());
            assertArrayEquals(body, r.body(), "the same bytes after the 307");
            assertEquals(2, opens.get());
        }
    }

    @Test
    void aOneShotBodyIsSentOnceAndThe401IsTheAnswer() throws Exception {
        byte[] body = data(MIB);
        try (Session s = new Session(Servers.standinConfig().build())) {
            s.token();
            Servers.revoke();
            Response r = s.upload("PUT", "/echo", NONE, BodySource.of(new ByteArrayInputStream(body), body.length));
            assertEquals(401, r.status());
            assertEquals(1, Servers.number(Servers.stats(), "unauthorized"));
            assertEquals(0, Servers.apiRequests(), "not resent");
            assertEquals(1, Servers.tokenRequests(), "no token fetched for a resend");
            // The rejected token was dropped all the same: the next request gets a new one.
            assertEquals(200, s.request("GET", "/headers").status());
            assertEquals(2, Servers.tokenRequests());
            // A 307 is the answer too.
            String to = Servers.standin() + "/echo";
            r = s.upload("POST", "/redirect?code=307&to=" + to, NONE, BodySource.of(new ByteArrayInputStream(body), -1));
            assertEquals(307, r.status());
        }
    }

    @Test
    void exceptionsInTheSourceAreRethrownAndTheSessionWorksAfter() throws Exception {
        try (Session s = new Session(Servers.standinConfig().build())) {
            IOException broken = new IOException("the disk went away");
            InputStream failing = new InputStream() {
                int left = 200_000;

                @Override
                public int read() throws IOException {
                    throw broken;
                }

                @Override
                public int read(byte[] b, int off, int len) throws IOException {
                    if (left <= 0) {
                        throw broken;
                    }
                    int n = Math.min(len, left);
                    left -= n;
                    return n;
                }
            };
            assertSame(broken, assertThrows(IOException.class,
                    () -> s.upload("PUT", "/echo", NONE, BodySource.of(failing, 1_000_000))));
            IllegalStateException bug = new IllegalStateException("a bug in the source");
            assertSame(bug, assertThrows(IllegalStateException.class, () -> s.upload("PUT", "/echo", NONE,
                    BodySource.reopening(() -> {
                        throw bug;
                    }, -1))));
            // Through stream(): before the head, so stream() itself throws.
            IOException again = new IOException("again");
            assertSame(again, assertThrows(IOException.class, () -> s.stream("PUT", "/echo", NONE,
                    BodySource.reopening(() -> {
                        throw again;
                    }, 10))));
            assertEquals(200, s.request("GET", "/headers").status());
            assertEquals(0, Servers.number(Servers.stats(), "unauthorized"));
        }
    }

    @Test
    void aDownloadGoesToTheOutputStreamInBoundedMemory() throws Exception {
        long size = 64L * MIB;
        try (Session s = new Session(Servers.standinConfig().build())) {
            s.token();
            long base = heapUsed();
            long[] grew = {Long.MIN_VALUE};
            int[] biggest = {0};
            CountingOut out = new CountingOut() {
                @Override
                public void write(byte[] b, int off, int len) {
                    for (int i = 0; i < len; i += 4093) {
                        assertEquals('a', b[off + i]);
                    }
                    biggest[0] = Math.max(biggest[0], len);
                    if (count < size / 2 && count + len >= size / 2) {
                        grew[0] = heapUsed() - base; // halfway through
                    }
                    count += len;
                }
            };
            Response r = s.download("GET", "/big?bytes=" + size, out);
            assertEquals(200, r.status());
            assertEquals(String.valueOf(size), r.header("content-length"));
            assertEquals(0, r.body().length);
            assertEquals(size, out.count);
            assertTrue(biggest[0] <= 1 << 20, "pieces, not the body: " + biggest[0]);
            assertTrue(grew[0] != Long.MIN_VALUE && grew[0] < 8 * MIB, "heap grew by " + grew[0] + " halfway through 64 MiB");
        }
    }

    @Test
    void aStreamedBodyIsReadWithBackPressureInBoundedMemory() throws Exception {
        long size = 64L * MIB;
        try (Session s = new Session(Servers.standinConfig().build())) {
            long base = heapUsed();
            try (StreamedResponse r = s.stream("GET", "/big?bytes=" + size)) {
                assertEquals(200, r.status());
                assertEquals(String.valueOf(size), r.header("Content-Length"));
                Thread.sleep(300); // the reader stalls: the worker waits, a few pieces ahead
                assertTrue(r.queued() <= StreamedResponse.QUEUE_PIECES, "queued " + r.queued());
                assertFalse(r.finished().isDone(), "the download waits for the reader");
                InputStream in = r.body();
                byte[] buf = new byte[100_000];
                long total = 0;
                long grew = Long.MIN_VALUE;
                for (int n; (n = in.read(buf)) > 0; ) {
                    assertEquals('a', buf[n - 1]);
                    if (total < size / 2 && total + n >= size / 2) {
                        grew = heapUsed() - base;
                    }
                    total += n;
                }
                assertEquals(size, total);
                assertEquals(-1, in.read());
                assertTrue(grew != Long.MIN_VALUE && grew < 8 * MIB, "heap grew by " + grew + " halfway through 64 MiB");
                assertNull(r.finished().get(5, TimeUnit.SECONDS));
            }
        }
    }

    @Test
    void closingEarlyStopsTheRequestAndTheSessionWorksAfter() throws Exception {
        try (Session s = new Session(Servers.standinConfig().maxResponseBytes(1L << 30).build())) {
            StreamedResponse r = s.stream("GET", "/big?bytes=" + (256L * MIB));
            byte[] buf = new byte[MIB];
            assertTrue(r.body().read(buf) > 0);
            r.close();
            Throwable ended = r.finished().get(5, TimeUnit.SECONDS);
            assertTrue(ended instanceof CancelledException, String.valueOf(ended));
            assertThrows(IOException.class, () -> r.body().read(buf), "closed");
            r.close(); // idempotent
            assertEquals(200, s.request("GET", "/headers").status());
            try (StreamedResponse small = s.stream("PUT", "/echo", NONE, BodySource.of(new ByteArrayInputStream(buf), buf.length))) {
                ByteArrayOutputStream got = new ByteArrayOutputStream();
                small.body().transferTo(got);
                assertArrayEquals(buf, got.toByteArray());
            }
        }
    }

    @Test
    void anExceptionInTheConsumerStopsTheDownload() throws Exception {
        try (Session s = new Session(Servers.standinConfig().maxResponseBytes(1L << 30).build())) {
            IOException full = new IOException("no space left");
            OutputStream failing = new CountingOut() {
                @Override
                public void write(byte[] b, int off, int len) throws IOException {
                    count += len;
                    if (count > 2 * MIB) {
                        throw full;
                    }
                }
            };
            long start = System.nanoTime();
            assertSame(full, assertThrows(IOException.class, () -> s.download("GET", "/big?bytes=" + (512L * MIB), failing)));
            assertTrue(System.nanoTime() - start < TimeUnit.SECONDS.toNanos(5), "stopped, not read to the end");
            RuntimeException bug = new RuntimeException("a bug in the consumer");
            OutputStream buggy = new CountingOut() {
                @Override
                public void write(byte[] b, int off, int len) {
                    throw bug;
                }
            };
            assertSame(bug, assertThrows(RuntimeException.class, () -> s.download("GET", "/big?bytes=1000000", buggy)));
            assertEquals(200, s.request("GET", "/headers").status());
        }
    }

    @Test
    void theCapAndTheDeadlineEndAStreamMidway() throws Exception {
        // An endless chunked body: no length to refuse up front, so the cap ends it midway.
        try (Session s = new Session(Servers.hostileConfig().maxResponseBytes(3 * MIB).build());
                StreamedResponse r = s.stream("GET", Servers.hostile()[0] + "/endless_chunked")) {
            assertEquals(200, r.status());
            CountingOut out = new CountingOut();
            IOException e = assertThrows(IOException.class, () -> r.body().transferTo(out));
            assertTrue(e.getCause() instanceof TooLargeException, String.valueOf(e.getCause()));
            assertTrue(out.count > 0 && out.count <= 3 * MIB, "read " + out.count);
            assertThrows(TooLargeException.class,
                    () -> s.download("GET", Servers.hostile()[0] + "/endless_chunked", new CountingOut()));
        }
        // A reader too slow for timeout_ms: read() fails with the library's timeout.
        try (Session s = new Session(Servers.standinConfig().timeout(Duration.ofMillis(1500)).build())) {
            s.token();
            long start = System.nanoTime();
            try (StreamedResponse r = s.stream("GET", "/big?bytes=" + (64L * MIB))) {
                byte[] buf = new byte[64 << 10];
                long total = 0;
                IOException e = null;
                try {
                    for (int n; (n = r.body().read(buf)) > 0; ) {
                        total += n;
                        Thread.sleep(20);
                    }
                } catch (IOException failed) {
                    e = failed;
                }
                assertNotNull(e, "the deadline ended the stream");
                assertTrue(e.getCause() instanceof CloudAuthTimeoutException, String.valueOf(e.getCause()));
                assertTrue(total > 0 && total < 64L * MIB, "read " + total);
            }
            assertTrue(System.nanoTime() - start < TimeUnit.SECONDS.toNanos(6));
            assertEquals(200, s.request("GET", "/headers").status());
        }
    }

    /** Counts what it is given and keeps none of it. */
    static class CountingOut extends OutputStream {
        long count;

        @Override
        public void write(int b) {
            count++;
        }

        @Override
        public void write(byte[] b, int off, int len) throws IOException {
            count += len;
        }
    }
}
