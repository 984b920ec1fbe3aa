package dev.cloudauth;

import com.sun.jna.Pointer;
import java.io.IOException;
import java.io.InputStream;
import java.io.InterruptedIOException;
import java.lang.ref.Cleaner;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ArrayBlockingQueue;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * A response whose body arrives as an {@link InputStream} while it downloads
 * ({@link Session#stream}). The native call runs on a worker thread and hands each piece to a
 * bounded queue: when the reader falls behind the worker waits, the library stops reading the
 * socket and the server is held back by TCP, so memory stays at a few pieces whatever the
 * body's size. A failure after the head (the deadline, {@code max_response_bytes}, the
 * network) is an {@link IOException} from {@code read}, its cause the
 * {@link CloudAuthException}.
 *
 * <p>Close it (try-with-resources): closing before the end stops the request at the next piece
 * that arrives (the connection is closed, not reused) and frees the worker. One that is never
 * closed is stopped the same way once unreachable.
 *
 * <pre>{@code
 * try (StreamedResponse r = session.stream("GET", "/storage/file/big.bin")) {
 *     if (r.status() == 200) Files.copy(r.body(), target);
 * }
 * }</pre>
 */
public final class StreamedResponse implements AutoCloseable {
    private static final Cleaner CLEANER = Cleaner.create();
    /** Pieces the worker may be ahead of the reader (each at most about 64 KiB). */
    static final int QUEUE_PIECES = 8;
    private static final AtomicInteger THREADS = new AtomicInteger();
    private static final ExecutorService WORKERS = Executors.newCachedThreadPool(r -> {
        Thread t = new Thread(r, "cloudauth-stream-" + THREADS.incrementAndGet());
        t.setDaemon(true);
        return t;
    });

    private final Response head;
    private final Pipe pipe;
    private final Body body = new Body();
    private final Cleaner.Cleanable cleanable;

    private StreamedResponse(Response head, Pipe pipe) {
        this.head = head;
        this.pipe = pipe;
        this.cleanable = CLEANER.register(this, pipe::close); // the action holds the pipe only
    }

    /** What the worker produced, with nothing that reaches the StreamedResponse. */
    static final class Pipe implements Streams.Sink {
        private static final Object END = new Object();

        final CompletableFuture<Response> head = new CompletableFuture<>();
        /** Completes when the native call has returned: with null, or what ended it. */
        final CompletableFuture<Throwable> finished = new CompletableFuture<>();
        private final BlockingQueue<Object> queue = new ArrayBlockingQueue<>(QUEUE_PIECES);
        private volatile boolean closed;

        @Override
        public boolean head(Response h) {
            head.complete(h);
            return !closed;
        }

        @Override
        public boolean write(long address, int len) throws InterruptedException {
            if (closed) {
                return false;
            }
            byte[] piece = new Pointer(address).getByteArray(0, len);
            // Blocks while the reader is QUEUE_PIECES behind; close() empties the queue, so
            // this put returns and the next piece sees `closed`.
            queue.put(piece);
            return !closed;
        }

        /** The worker's last word: the end, or a failure (which also fails a head not yet seen). */
        void end(Throwable failure) {
            if (failure != null && head.completeExceptionally(failure)) {
                return; // failed before the head: the caller of stream() throws it
            }
            Object last = failure == null ? END : new Failure(failure);
            try {
                while (!closed && !queue.offer(last, 100, java.util.concurrent.TimeUnit.MILLISECONDS)) {
                    // the reader is behind: wait for room, or for close
                }
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }

        void close() {
            closed = true;
            queue.clear();
        }
    }

    private static final class Failure {
        final Throwable cause;

        Failure(Throwable cause) {
            this.cause = cause;
        }
    }

    /**
     * Starts the worker and waits for the head. The session handle {@code s} was acquired by
     * the caller; the worker releases it through {@code release} when the call returns.
     */
    static StreamedResponse start(long s, byte[] method, byte[] url, com.sun.jna.Memory lines, int n, BodySource body,
            Runnable release) throws IOException {
        Pipe pipe = new Pipe();
        Runnable work = () -> {
            Throwable failure = null;
            Response last = null;
            try {
                last = Streams.exchange(s, method, url, lines == null ? 0 : com.sun.jna.Memory.nativeValue(lines), n, body, pipe);
            } catch (Throwable t) {
                failure = t;
            } finally {
                if (lines != null) {
                    lines.close();
                }
                release.run();
            }
            if (last != null) {
                pipe.head.complete(last); // no head callback came (cannot happen with a sink; harmless)
            }
            pipe.finished.complete(failure);
            pipe.end(failure);
        };
        try {
            WORKERS.execute(work);
        } catch (RuntimeException | Error e) { // no thread: nothing started
            if (lines != null) {
                lines.close();
            }
            release.run();
            throw e;
        }
        Response head;
        try {
            head = pipe.head.get();
        } catch (InterruptedException e) {
            pipe.close();
            Thread.currentThread().interrupt();
            throw new InterruptedIOException("interrupted while waiting for the response's head");
        } catch (ExecutionException e) {
            Throwable cause = e.getCause();
            if (cause instanceof IOException) {
                throw (IOException) cause;
            }
            if (cause instanceof RuntimeException) {
                throw (RuntimeException) cause;
            }
            if (cause instanceof Error) {
                throw (Error) cause;
            }
            throw new IOException(cause);
        }
        return new StreamedResponse(head, pipe);
    }

    /** When the native call has returned, and what ended it (null: the whole body came). */
    CompletableFuture<Throwable> finished() {
        return pipe.finished;
    }

    /** Pieces the worker has queued ahead of the reader. */
    int queued() {
        return pipe.queue.size();
    }

    /** The HTTP status of the final answer (after redirects and a 401 resend). */
    public int status() {
        return head.status();
    }

    /** Every header, names in lower case, in the order received. */
    public Map<String, List<String>> headers() {
        return head.headers();
    }

    /** The first value of header {@code name} (any case), or null. */
    public String header(String name) {
        return head.header(name);
    }

    /** The body, piece by piece as it arrives; the same stream on every call. */
    public InputStream body() {
        return body;
    }

    /** Stops the download if it has not ended; idempotent. */
    @Override
    public void close() {
        body.closed = true;
        cleanable.clean();
    }

    @Override
    public String toString() {
        return "StreamedResponse{status=" + head.status() + ", headers=" + head.headers().size() + "}";
    }

    /** Reads the pipe's pieces; an inner class, so a reader holding it keeps the response reachable. */
    private final class Body extends InputStream {
        private byte[] piece;
        private int at;
        private boolean ended;
        private IOException failed;
        private volatile boolean closed;

        @Override
        public int read() throws IOException {
            byte[] one = new byte[1];
            return read(one, 0, 1) < 0 ? -1 : one[0] & 0xff;
        }

        @Override
        public int read(byte[] b, int off, int len) throws IOException {
            java.util.Objects.checkFromIndexSize(off, len, b.length);
            if (!fill()) {
                return -1;
            }
            if (len == 0) {
                return 0;
            }
            int n = Math.min(len, piece.length - at);
            System.arraycopy(piece, at, b, off, n);
            at += n;
            return n;
        }

        @Override
        public int available() {
            return piece == null ? 0 : piece.length - at;
        }

        /** A piece with bytes left, waiting for one if needed; false at the end. */
        private boolean fill() throws IOException {
            if (closed) {
                throw new IOException("the response body is closed");
            }
            if (failed != null) {
                throw failed;
            }
            if (piece != null && at < piece.length) {
                return true;
            }
            if (ended) {
                return false;
            }
            Object next;
            try {
                next = pipe.queue.take();
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new InterruptedIOException("interrupted while waiting for the response body");
            }
            if (next == Pipe.END) {
                ended = true;
                piece = null;
                return false;
            }
            if (next instanceof Failure) {
                Throwable cause = ((Failure) next).cause;
                failed = cause instanceof IOException ? (IOException) cause : new IOException(cause.getMessage(), cause);
                throw failed;
            }
            piece = (byte[]) next;
            at = 0;
            return true;
        }

        @Override
        public void close() {
            StreamedResponse.this.close();
        }
    }
}
