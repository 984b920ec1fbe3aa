package dev.cloudauth;

import com.sun.jna.Callback;
import com.sun.jna.CallbackReference;
import com.sun.jna.Memory;
import com.sun.jna.Pointer;
import java.io.IOException;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicLong;

/**
 * {@code cloudauth_session_request_stream_body}: a request body read from a {@link BodySource}
 * and a response body handed to a {@link Sink}, through four JNA callbacks made once (static,
 * so always strongly held). They run on the thread inside the native call; {@code user_data}
 * is the id of that call's {@link Exchange} in {@link #LIVE}. An exception in a callback
 * never reaches native code: it is kept, the callback returns failure (the library then
 * cancels the request) and the exchange rethrows it once the native call has returned.
 */
final class Streams {
    /** Where the response goes; both methods run on the thread inside the native call. */
    interface Sink {
        /** The final answer's status and headers, before any body byte. False stops the request. */
        boolean head(Response head) throws Exception;

        /** {@code len} body bytes at {@code address}, valid during the call only. False stops the request. */
        boolean write(long address, int len) throws Exception;
    }

    private static final long READ_FAILED = -1L; // CLOUDAUTH_READ_FAILED, (size_t)-1
    private static final int MAX_READ = 64 << 10; // the library asks for at most this much

    interface ReadFn extends Callback {
        long invoke(long userData, long buf, long cap);
    }

    interface RewindFn extends Callback {
        int invoke(long userData);
    }

    interface HeadFn extends Callback {
        int invoke(long userData, long head);
    }

    interface WriteFn extends Callback {
        int invoke(long userData, long data, long len);
    }

    private static final ReadFn READ = Streams::read;
    private static final RewindFn REWIND = Streams::rewind;
    private static final HeadFn HEAD = Streams::head;
    private static final WriteFn WRITE = Streams::write;
    private static final long READ_PTR = fn(READ);
    private static final long REWIND_PTR = fn(REWIND);
    private static final long HEAD_PTR = fn(HEAD);
    private static final long WRITE_PTR = fn(WRITE);

    private static final Map<Long, Exchange> LIVE = new ConcurrentHashMap<>();
    private static final AtomicLong IDS = new AtomicLong();

    private Streams() {}

    private static long fn(Callback cb) {
        return Pointer.nativeValue(CallbackReference.getFunctionPointer(cb));
    }

    /** One call's state: its source, its sink and the first exception a callback threw. */
    private static final class Exchange {
        final BodySource.Reader body;
        final Sink sink;
        byte[] chunk;
        Throwable failure;

        Exchange(BodySource.Reader body, Sink sink) {
            this.body = body;
            this.sink = sink;
        }
    }

    /**
     * Sends the request and returns the final response (its body empty when {@code sink} is
     * set). {@code s} is held by the caller for the length of the call. Rethrows what a
     * callback threw (IOException, unchecked), else the library's failure.
     */
    static Response exchange(long s, byte[] method, byte[] url, long headers, long nHeaders, BodySource body, Sink sink)
            throws IOException {
        Exchange ex = new Exchange(body == null ? null : body.reader(), sink);
        long id = IDS.incrementAndGet();
        LIVE.put(id, ex);
        Throwable thrown = null;
        // cloudauth_body_source {read, rewind, user_data, length} then cloudauth_body_sink {head, write, user_data}.
        try (Memory block = new Memory(56)) {
            long source = 0;
            long target = 0;
            if (body != null) {
                block.setLong(0, READ_PTR);
                block.setLong(8, REWIND_PTR); // it answers "no" for a one-shot body
                block.setLong(16, id);
                block.setLong(24, body.length());
                source = Memory.nativeValue(block);
            }
            if (sink != null) {
                block.setLong(32, HEAD_PTR);
                block.setLong(40, WRITE_PTR);
                block.setLong(48, id);
                target = Memory.nativeValue(block) + 32;
            }
            long[] out = new long[1];
            int rc = Lib.cloudauth_session_request_stream_body(s, method, url, headers, nHeaders, source, target, out);
            CloudAuthException failed = rc == Lib.OK ? null : CloudAuthException.last(rc);
            Response response = null;
            if (rc == Lib.OK) {
                try {
                    response = Response.read(out[0]);
                } finally {
                    Lib.cloudauth_response_free(out[0]);
                }
            }
            if (ex.failure != null) {
                throw rethrown(ex.failure);
            }
            if (failed != null) {
                throw failed;
            }
            return response;
        } catch (IOException | RuntimeException | Error e) {
            thrown = e;
            throw e;
        } finally {
            LIVE.remove(id);
            close(ex.body, thrown);
        }
    }

    /** Closes the streams the body's opener gave; a failure to close is reported, never hides another. */
    private static void close(BodySource.Reader body, Throwable thrown) throws IOException {
        if (body == null) {
            return;
        }
        try {
            body.close();
        } catch (IOException | RuntimeException e) {
            if (thrown == null) {
                throw e;
            }
            thrown.addSuppressed(e);
        }
    }

    private static IOException rethrown(Throwable t) {
        if (t instanceof IOException) {
            return (IOException) t;
        }
        if (t instanceof RuntimeException) {
            throw (RuntimeException) t;
        }
        if (t instanceof Error) {
            throw (Error) t;
        }
        return new IOException(t.getMessage(), t);
    }

    private static long read(long userData, long buf, long cap) {
        Exchange ex = LIVE.get(userData);
        if (ex == null || ex.failure != null) {
            return READ_FAILED;
        }
        try {
            int want = (int) Math.min(cap, MAX_READ);
            if (ex.chunk == null || ex.chunk.length < want) {
                ex.chunk = new byte[want];
            }
            int n = ex.body.read(ex.chunk, want);
            if (n > 0) {
                new Pointer(buf).write(0, ex.chunk, 0, n);
            }
            return n;
        } catch (Throwable t) {
            ex.failure = t;
            return READ_FAILED;
        }
    }

    private static int rewind(long userData) {
        Exchange ex = LIVE.get(userData);
        if (ex == null || ex.failure != null) {
            return 1;
        }
        try {
            return ex.body.rewind() ? 0 : 1;
        } catch (Throwable t) {
            ex.failure = t;
            return 1;
        }
    }

    private static int head(long userData, long head) {
        Exchange ex = LIVE.get(userData);
        if (ex == null || ex.failure != null) {
            return 1;
        }
        try {
            return ex.sink.head(Response.read(head)) ? 0 : 1;
        } catch (Throwable t) {
            ex.failure = t;
            return 1;
        }
    }

    private static int write(long userData, long data, long len) {
        Exchange ex = LIVE.get(userData);
        if (ex == null || ex.failure != null) {
            return 1;
        }
        try {
            return ex.sink.write(data, Math.toIntExact(len)) ? 0 : 1;
        } catch (Throwable t) {
            ex.failure = t;
            return 1;
        }
    }
}
