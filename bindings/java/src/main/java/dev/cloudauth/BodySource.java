package dev.cloudauth;

import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Objects;
import java.util.concurrent.atomic.AtomicBoolean;

/**
 * A request body read piece by piece while the request is written (the library's
 * {@code cloudauth_body_source}, docs/streaming.md): never held whole in memory.
 *
 * <ul>
 *   <li>{@link #of(InputStream, long)}: a one-shot stream. It is read once and never rewound,
 *       so a 401 to our token, or a 307/308, is the answer (the rejected token is dropped all
 *       the same). The caller keeps ownership: it is not closed here.
 *   <li>{@link #reopening(Opener, long)} and {@link #ofFile(Path)}: a body that can be sent
 *       again. For a resend the stream being read is closed and the opener called for a new one
 *       from the start; every stream the opener gives is closed here.
 * </ul>
 *
 * <p>Why an opener and not {@code mark}/{@code reset}: marking a stream that is not already in
 * memory (a {@code BufferedInputStream} over a file or socket) makes it keep every byte read
 * since the mark, which is the whole body; an opener replays it from its source in constant
 * memory.
 *
 * <p>A length of -1 means unknown: the body is sent chunked. A known length is sent as
 * {@code Content-Length}; a stream that ends before it, or has more, fails the request with
 * {@link InvalidArgumentException} before its last byte is sent.
 */
public final class BodySource {
    /** Opens the body's bytes from the start; called for the first send and each resend. */
    @FunctionalInterface
    public interface Opener {
        InputStream open() throws IOException;
    }

    private final InputStream once;
    private final Opener opener;
    private final long length;
    private final AtomicBoolean used = new AtomicBoolean();

    private BodySource(InputStream once, Opener opener, long length) {
        if (length < -1) {
            throw new InvalidArgumentException("the body's length is " + length + ": give the number of bytes, or -1 for unknown");
        }
        this.once = once;
        this.opener = opener;
        this.length = length;
    }

    /** A one-shot body: {@code length} bytes of {@code in} (-1: until its end, sent chunked). */
    public static BodySource of(InputStream in, long length) {
        return new BodySource(Objects.requireNonNull(in, "in"), null, length);
    }

    /** A body that {@code opener} opens again for each resend; usable for many requests. */
    public static BodySource reopening(Opener opener, long length) {
        return new BodySource(null, Objects.requireNonNull(opener, "opener"), length);
    }

    /** The file's bytes, with its size as the length; opened again for a resend. */
    public static BodySource ofFile(Path file) throws IOException {
        long size = Files.size(file);
        return reopening(() -> Files.newInputStream(file), size);
    }

    /** The length in bytes, or -1 when unknown. */
    public long length() {
        return length;
    }

    /** Whether the body can be sent again ({@link #reopening}, {@link #ofFile}). */
    public boolean isReplayable() {
        return opener != null;
    }

    /** The reading state of one request. */
    Reader reader() {
        if (opener == null && used.getAndSet(true)) {
            throw new InvalidArgumentException("this one-shot body was already sent: make a BodySource for each request");
        }
        return new Reader();
    }

    /** One request's reading of the body: the stream being read, opened on first use. */
    final class Reader {
        private InputStream current;

        /** Up to {@code len} bytes into {@code b}; 0 at the end of the body. */
        int read(byte[] b, int len) throws IOException {
            if (len <= 0) {
                throw new IOException("the library asked for " + len + " bytes of the body");
            }
            if (current == null) {
                current = open();
            }
            while (true) {
                int n = current.read(b, 0, len);
                if (n < 0) {
                    return 0;
                }
                if (n > 0) {
                    return n;
                }
            }
        }

        /** Back to the start: false when this body cannot go again. */
        boolean rewind() throws IOException {
            if (opener == null) {
                return false;
            }
            close();
            current = open();
            return true;
        }

        /** Closes what the opener gave; a caller's one-shot stream stays open. */
        void close() throws IOException {
            InputStream in = current;
            current = null;
            if (in != null && opener != null) {
                in.close();
            }
        }

        private InputStream open() throws IOException {
            if (opener == null) {
                return once;
            }
            InputStream in = opener.open();
            if (in == null) {
                throw new IOException("the body's opener returned null");
            }
            return in;
        }
    }
}
