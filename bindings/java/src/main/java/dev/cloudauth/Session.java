package dev.cloudauth;

import com.sun.jna.Memory;
import com.sun.jna.Native;
import com.sun.jna.Pointer;
import java.io.IOException;
import java.io.OutputStream;
import java.lang.ref.Cleaner;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.Arrays;
import java.util.Collections;
import java.util.Map;
import java.util.Objects;
import java.util.concurrent.CompletableFuture;

/**
 * OAuth2 client credentials, the cached access token and a connection pool
 * ({@code cloudauth_session}). Thread-safe: share one session across all threads; concurrent
 * callers cause at most one token request at a time.
 *
 * <pre>{@code
 * try (Session session = new Session(config)) {
 *     Response r = session.request("GET", "/v5.0/ocr/RecognizeImage?id=" + id);
 * }
 * }</pre>
 *
 * <p>{@link #close()} may run while other threads are inside a call: those calls finish, the
 * native session is freed after the last one, and any later call throws
 * {@link IllegalStateException}. A session never closed is freed by a {@link Cleaner} once
 * unreachable (async operations in flight keep it reachable).
 */
public final class Session implements AutoCloseable {
    private static final Cleaner CLEANER = Cleaner.create();
    private static final int MAX_TOKEN_ATTEMPTS = 8;

    private final SessionHandle handle;
    private final Cleaner.Cleanable cleanable;
    private final String baseUrl;
    private final String origin;

    /** The last token handed out: while the library's bytes are unchanged, the same String. */
    private volatile Decoded last;

    private static final class Decoded {
        final byte[] bytes;
        final String text;

        Decoded(byte[] bytes, String text) {
            this.bytes = bytes;
            this.text = text;
        }
    }

    /**
     * Per thread: a direct buffer the library writes the token's length (at 0) and the token
     * (from 8) into, read back with plain Java loads (no JNI call), and a byte[] to compare it
     * in, so a cached token costs one native call and no allocation.
     */
    private static final class Scratch {
        ByteBuffer buf;
        long address;
        byte[] bytes;

        Scratch(int capacity) {
            grow(capacity);
        }

        void grow(int capacity) {
            buf = ByteBuffer.allocateDirect(8 + capacity).order(ByteOrder.nativeOrder());
            address = Pointer.nativeValue(Native.getDirectBufferPointer(buf));
            bytes = new byte[capacity];
        }
    }

    private static final ThreadLocal<Scratch> SCRATCH = ThreadLocal.withInitial(() -> new Scratch(2048));

    /**
     * A session from {@code config}. No network traffic happens here; the first token is
     * fetched on first use.
     *
     * @throws InvalidArgumentException missing credentials, an unreadable file, a bad value
     * @throws InsecureUrlException token_url is plain http to a non-loopback host
     */
    public Session(Config config) {
        Objects.requireNonNull(config, "config");
        long cfg = config.toNative();
        long tag = 0;
        try {
            EventListener listener = config.listener();
            if (listener != null) {
                tag = Delivery.nextTag();
                // Queue only (no callback): every event, also those of a blocking call,
                // reaches the listener on the delivery thread.
                int rc = Lib.cloudauth_config_set_event_queue(cfg, Delivery.QUEUE, tag);
                if (rc != Lib.OK) {
                    throw CloudAuthException.last(rc);
                }
                Delivery.addListener(tag, listener);
            }
            long[] out = new long[1];
            int rc = Lib.cloudauth_session_new(cfg, out);
            if (rc != Lib.OK) {
                throw CloudAuthException.last(rc);
            }
            handle = new SessionHandle(out[0], tag);
            // Fixed for the session's life; the library's (base_url from the environment or
            // the default counts), not this binding's copy of the options.
            long o = Lib.cloudauth_session_origin(out[0]);
            origin = o == 0 ? null : Lib.string(o);
        } catch (RuntimeException | Error e) {
            if (tag != 0) {
                Delivery.removeListener(tag);
            }
            throw e;
        } finally {
            Lib.cloudauth_config_free(cfg);
        }
        baseUrl = config.baseUrl();
        cleanable = CLEANER.register(this, handle);
    }

    /** A session configured from CLOUDAUTH_* environment variables alone. */
    public static Session fromEnv() {
        return new Session(Config.fromEnv());
    }

    /**
     * The current valid access token, fetched or refreshed first when needed (a cached token
     * costs no network traffic, no lock and, when unchanged, no allocation). A credential:
     * never log it.
     */
    public String token() {
        long s = handle.acquire();
        try {
            Scratch sc = SCRATCH.get();
            for (int attempt = 1; ; attempt++) {
                int rc = Ffm.TOKEN != null ? Ffm.token(s, sc.address + 8, sc.bytes.length, sc.address)
                        : Lib.cloudauth_session_token(s, sc.address + 8, sc.bytes.length, sc.address);
                long len = sc.buf.getLong(0);
                if (rc == Lib.ERR_BUFFER_TOO_SMALL && attempt < MAX_TOKEN_ATTEMPTS && len < Integer.MAX_VALUE - 8) {
                    sc.grow((int) len + 1); // a refresh may change the length again: bounded
                    continue;
                }
                if (rc != Lib.OK) {
                    throw CloudAuthException.last(rc);
                }
                return decode(sc, (int) len);
            }
        } finally {
            handle.release();
        }
    }

    private String decode(Scratch sc, int len) {
        sc.buf.position(8);
        sc.buf.get(sc.bytes, 0, len);
        Decoded d = last;
        if (d != null && Arrays.equals(d.bytes, 0, d.bytes.length, sc.bytes, 0, len)) {
            return d.text;
        }
        byte[] copy = Arrays.copyOf(sc.bytes, len);
        d = new Decoded(copy, new String(copy, StandardCharsets.UTF_8));
        last = d;
        return d.text;
    }

    /**
     * The token without blocking: at once on the binding's delivery path when one is cached,
     * else after a fetch that blocks no thread. {@code cancel(true)} ends the wait.
     */
    public CompletableFuture<String> tokenAsync() {
        return start((s, tag, op) -> Lib.cloudauth_session_token_queued(s, Delivery.QUEUE, tag, op));
    }

    /**
     * The token if one is usable now without I/O, else null: then a fetch starts on a library
     * thread and a later call finds its token ({@code cloudauth_session_token_cached}).
     */
    public String tokenIfCached() {
        long s = handle.acquire();
        try {
            Scratch sc = SCRATCH.get();
            for (int attempt = 1; ; attempt++) {
                int rc = Ffm.TOKEN_CACHED != null ? Ffm.tokenCached(s, sc.address + 8, sc.bytes.length, sc.address)
                        : Lib.cloudauth_session_token_cached(s, sc.address + 8, sc.bytes.length, sc.address);
                long len = sc.buf.getLong(0);
                if (rc == Lib.ERR_BUFFER_TOO_SMALL && attempt < MAX_TOKEN_ATTEMPTS && len < Integer.MAX_VALUE - 8) {
                    sc.grow((int) len + 1);
                    continue;
                }
                if (rc == Lib.ERR_WOULD_BLOCK) {
                    return null;
                }
                if (rc != Lib.OK) {
                    throw CloudAuthException.last(rc);
                }
                return decode(sc, (int) len);
            }
        } finally {
            handle.release();
        }
    }

    /** How long the current token has left (whole seconds), fetching one first if none is held. */
    public Duration tokenExpiresIn() {
        long s = handle.acquire();
        try {
            long[] out = new long[1];
            check(Lib.cloudauth_session_token_expires_in(s, out));
            return Duration.ofSeconds(out[0]);
        } finally {
            handle.release();
        }
    }

    /** Drops the cached token: the next call fetches a new one. */
    public void invalidate() {
        long s = handle.acquire();
        try {
            check(Lib.cloudauth_session_invalidate(s));
        } finally {
            handle.release();
        }
    }

    /**
     * Drops the cached token only if it is still {@code rejectedToken}, the one a server just
     * answered 401 to; a token another thread fetched meanwhile survives.
     */
    public void invalidate(String rejectedToken) {
        byte[] token = Text.c(rejectedToken, "the token");
        long s = handle.acquire();
        try {
            check(Lib.cloudauth_session_invalidate_token(s, token));
        } finally {
            handle.release();
            Text.wipe(token);
        }
    }

    /**
     * Throws unless a request to {@code url} may carry the token by the library's rule: http(s)
     * with a host, over https, or plain http to a loopback host, or allow_insecure_http.
     */
    public void checkUrl(String url) {
        byte[] u = Text.c(url, "the url");
        long s = handle.acquire();
        try {
            check(Lib.cloudauth_session_check_url(s, u));
        } finally {
            handle.release();
        }
    }

    /** Rotates the credentials for later token requests (the current token stays until it expires). */
    public void setCredentials(String clientId, String clientSecret) {
        byte[] id = Text.c(clientId, "the client id");
        byte[] secret = Text.c(clientSecret, "the client secret");
        long s = handle.acquire();
        try {
            check(Lib.cloudauth_session_set_credentials(s, id, secret));
        } finally {
            handle.release();
            Text.wipe(secret);
        }
    }

    /** The session's counters. */
    public Stats stats() {
        long s = handle.acquire();
        try (Memory m = new Memory(Stats.SIZE)) {
            check(Lib.cloudauth_session_stats(s, Memory.nativeValue(m), Stats.SIZE));
            long[] fields = new long[Stats.SIZE / 8];
            m.read(0, fields, 0, fields.length);
            return new Stats(fields);
        } finally {
            handle.release();
        }
    }

    /** {@code request(method, url, no headers, no body)}. */
    public Response request(String method, String url) {
        return request(method, url, Collections.emptyMap(), null);
    }

    /**
     * Sends an authorized request and reads the whole response. The session adds
     * {@code Authorization: Bearer <token>}; on a 401 it drops that token, fetches a new one and
     * sends once more. Redirects are followed; one to another origin never carries the token.
     * Any HTTP status is a {@link Response}, not an exception.
     *
     * @param method "GET", "POST", ...
     * @param url an absolute http(s) URL, or a path joined to base_url
     * @param headers extra request headers (not Authorization: the session sets it); may be empty
     * @param body the request body, or null
     */
    public Response request(String method, String url, Map<String, String> headers, byte[] body) {
        byte[] m = Text.c(method, "the method");
        byte[] u = Text.c(url, "the url");
        Memory lines = headerLines(headers);
        int n = headers == null ? 0 : headers.size();
        boolean hasBody = body != null && body.length > 0;
        long s = handle.acquire();
        try {
            long[] out = new long[1];
            check(Lib.cloudauth_session_request(s, m, u, lines == null ? 0 : Memory.nativeValue(lines), n,
                    hasBody ? body : null, hasBody ? body.length : 0, out));
            try {
                return Response.read(out[0]);
            } finally {
                Lib.cloudauth_response_free(out[0]);
            }
        } finally {
            handle.release();
            if (lines != null) {
                lines.close();
            }
        }
    }

    /**
     * {@link #request(String, String, Map, byte[])} without blocking a thread: the same checks,
     * token handling and 401 resend. {@code cancel(true)} cancels the native operation;
     * closing the session with operations in flight ends them with {@link CancelledException}.
     * Invalid arguments throw at once, as in the blocking call.
     */
    public CompletableFuture<Response> requestAsync(String method, String url, Map<String, String> headers, byte[] body) {
        byte[] m = Text.c(method, "the method");
        byte[] u = Text.c(url, "the url");
        Memory lines = headerLines(headers);
        int n = headers == null ? 0 : headers.size();
        boolean hasBody = body != null && body.length > 0;
        try {
            return start((s, tag, op) -> Lib.cloudauth_session_request_queued(s, m, u,
                    lines == null ? 0 : Memory.nativeValue(lines), n, hasBody ? body : null, hasBody ? body.length : 0,
                    Delivery.QUEUE, tag, op));
        } finally {
            if (lines != null) {
                lines.close(); // the library copied every argument before returning
            }
        }
    }

    /** {@code requestAsync(method, url, no headers, no body)}. */
    public CompletableFuture<Response> requestAsync(String method, String url) {
        return requestAsync(method, url, Collections.emptyMap(), null);
    }

    /**
     * {@link #request(String, String, Map, byte[])} with the body read from {@code body} while
     * the request is written, never held whole in memory (docs/streaming.md). A 401 to our
     * token drops that token always; the request is sent once more only when the body is
     * {@linkplain BodySource#isReplayable() replayable} (reopened from its start), else the 401
     * is the answer. The same holds for a 307/308.
     *
     * @param body the request body, or null for none
     * @throws IOException what the body's stream (or its opener) threw, rethrown once the
     *     native call has returned (the request was cancelled)
     */
    public Response upload(String method, String url, Map<String, String> headers, BodySource body) throws IOException {
        return exchange(method, url, headers, body, null);
    }

    /** {@code download(method, url, no headers, no body, out)}. */
    public Response download(String method, String url, OutputStream out) throws IOException {
        return download(method, url, Collections.emptyMap(), null, out);
    }

    /**
     * Sends the request (401 handling, redirects and resends as {@link #upload}) and writes the
     * final answer's body to {@code out} piece by piece as it arrives, on this thread: a
     * download of any size in the memory of one piece. The body of whatever answer came is
     * written (a 404's too): check {@link Response#status()}. {@code out} is not closed. Returns
     * the status and headers, with an empty body.
     *
     * <p>{@code timeout_ms} bounds the whole exchange, the time {@code out.write} takes included;
     * {@code max_response_bytes} caps the body. On any failure {@code out} may hold part of the
     * body: discard it.
     *
     * @throws IOException what {@code out} (or the body's stream) threw: the request is stopped
     *     and the exception rethrown once the native call has returned
     */
    public Response download(String method, String url, Map<String, String> headers, BodySource body, OutputStream out)
            throws IOException {
        Objects.requireNonNull(out, "out");
        return exchange(method, url, headers, body, new Streams.Sink() {
            private byte[] buf;

            @Override
            public boolean head(Response head) {
                return true;
            }

            @Override
            public boolean write(long address, int len) throws IOException {
                if (buf == null || buf.length < len) {
                    buf = new byte[Math.max(len, 64 << 10)];
                }
                new Pointer(address).read(0, buf, 0, len);
                out.write(buf, 0, len);
                return true;
            }
        });
    }

    /** {@code stream(method, url, no headers, no body)}. */
    public StreamedResponse stream(String method, String url) throws IOException {
        return stream(method, url, Collections.emptyMap(), null);
    }

    /**
     * Sends the request and returns once the final answer's status and headers are in, its body
     * an {@link InputStream} that is filled while it is read (see {@link StreamedResponse}: a
     * worker thread runs the native call, at most a few pieces ahead of the reader). Failures
     * before the head are thrown here, as by {@link #request}; later ones by the body's
     * {@code read}. Close the response.
     *
     * @param body the request body (read on the worker thread), or null
     */
    public StreamedResponse stream(String method, String url, Map<String, String> headers, BodySource body) throws IOException {
        byte[] m = Text.c(method, "the method");
        byte[] u = Text.c(url, "the url");
        Memory lines = headerLines(headers);
        int n = headers == null ? 0 : headers.size();
        long s;
        try {
            s = handle.acquire();
        } catch (IllegalStateException e) {
            if (lines != null) {
                lines.close();
            }
            throw e;
        }
        return StreamedResponse.start(s, m, u, lines, n, body, handle::release); // the worker releases
    }

    private Response exchange(String method, String url, Map<String, String> headers, BodySource body, Streams.Sink sink)
            throws IOException {
        byte[] m = Text.c(method, "the method");
        byte[] u = Text.c(url, "the url");
        Memory lines = headerLines(headers);
        int n = headers == null ? 0 : headers.size();
        long s = handle.acquire();
        try {
            return Streams.exchange(s, m, u, lines == null ? 0 : Memory.nativeValue(lines), n, body, sink);
        } finally {
            handle.release();
            if (lines != null) {
                lines.close();
            }
        }
    }

    private interface Starter {
        int start(long session, long tag, long[] op);
    }

    private <T> CompletableFuture<T> start(Starter starter) {
        NativeFuture<T> f = new NativeFuture<>(this);
        long tag = Delivery.nextTag();
        long[] op = new long[1];
        Delivery.addPending(tag, f);
        long s;
        try {
            s = handle.acquire();
        } catch (IllegalStateException e) {
            Delivery.removePending(tag);
            throw e;
        }
        int rc;
        try {
            rc = starter.start(s, tag, op);
            if (rc != Lib.OK) {
                throw CloudAuthException.last(rc); // read before release: it may call the library
            }
        } catch (RuntimeException | Error e) {
            Delivery.removePending(tag); // nothing started: no completion will come
            throw e;
        } finally {
            handle.release();
        }
        f.started(op[0]);
        return f;
    }

    /**
     * The header lines "Name: value" as the C array of pointers, in one native block (freed by
     * the caller), or null when there are none.
     */
    private static Memory headerLines(Map<String, String> headers) {
        if (headers == null || headers.isEmpty()) {
            return null;
        }
        byte[][] lines = new byte[headers.size()][];
        int i = 0;
        long size = 8L * lines.length;
        for (Map.Entry<String, String> h : headers.entrySet()) {
            String name = h.getKey();
            if (name == null || name.isEmpty() || name.indexOf(':') >= 0) {
                throw new InvalidArgumentException("header name " + (name == null ? "null" : "'" + name + "'")
                        + " is empty or contains ':'");
            }
            if (h.getValue() == null) {
                throw new InvalidArgumentException("the value of header '" + name + "' is null");
            }
            lines[i] = Text.c(name + ": " + h.getValue(), "header '" + name + "'");
            size += lines[i].length;
            i++;
        }
        Memory block = new Memory(size);
        long base = Memory.nativeValue(block);
        long at = 8L * lines.length;
        for (i = 0; i < lines.length; i++) {
            block.setLong(8L * i, base + at);
            block.write(at, lines[i], 0, lines[i].length);
            at += lines[i].length;
        }
        return block;
    }

    private static void check(int rc) {
        if (rc != Lib.OK) {
            throw CloudAuthException.last(rc);
        }
    }

    /**
     * The session's origin as the library sees it, {@code "scheme://host[:port]"} of base_url
     * (the default when none was set): the only origin the adapters send the token to
     * (docs/adapters.md).
     */
    public String origin() {
        return origin;
    }

    /** base_url as configured through this binding (or the environment), or null. */
    public String baseUrl() {
        return baseUrl;
    }

    public boolean isClosed() {
        return handle.isClosed();
    }

    /**
     * Frees the native session (after calls in flight on other threads return). Idempotent.
     * Async operations in flight end with {@link CancelledException}.
     */
    @Override
    public void close() {
        cleanable.clean();
    }

    /** No token, no secret: the base URL and whether it is closed. */
    @Override
    public String toString() {
        return "Session{baseUrl=" + baseUrl + (isClosed() ? ", closed}" : "}");
    }
}
