package dev.cloudauth;

import java.util.concurrent.atomic.AtomicLong;

/**
 * The native session pointer behind a guard: every call holds a reference for its length
 * ({@link #acquire}/{@link #release}), and {@link #close} frees the session only when the last
 * call in flight has returned. A call after close gets an IllegalStateException, never a
 * freed pointer. Also the Cleaner's action, so it holds nothing that reaches the Session.
 */
final class SessionHandle implements Runnable {
    private static final long CLOSED = 1L << 62;

    private final long ptr;
    private final long eventsTag;
    private final AtomicLong state = new AtomicLong();

    SessionHandle(long ptr, long eventsTag) {
        this.ptr = ptr;
        this.eventsTag = eventsTag;
    }

    long acquire() {
        while (true) {
            long s = state.get();
            if ((s & CLOSED) != 0) {
                throw new IllegalStateException("the cloudauth session is closed");
            }
            if (state.compareAndSet(s, s + 1)) {
                return ptr;
            }
        }
    }

    void release() {
        if (state.decrementAndGet() == CLOSED) {
            free();
        }
    }

    boolean isClosed() {
        return (state.get() & CLOSED) != 0;
    }

    /** Closes once: frees now, or when the last call in flight releases. */
    @Override
    public void run() {
        while (true) {
            long s = state.get();
            if ((s & CLOSED) != 0) {
                return;
            }
            if (state.compareAndSet(s, s | CLOSED)) {
                if (s == 0) {
                    free();
                }
                return;
            }
        }
    }

    private void free() {
        if (eventsTag != 0) {
            Delivery.removeListener(eventsTag);
        }
        Lib.cloudauth_session_free(ptr);
    }
}
