package dev.cloudauth;

import com.sun.jna.Pointer;
import java.time.Duration;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.Executor;
import java.util.concurrent.Executors;
import java.util.concurrent.ThreadFactory;
import java.util.concurrent.atomic.AtomicLong;

/**
 * The process's one completion queue and the thread that drains it ("cloudauth-delivery").
 * Every async operation ({@code cloudauth_session_*_queued}) and every event
 * ({@code cloudauth_config_set_event_queue}) of this binding finishes here, so no library
 * thread ever calls into Java: the JVM sees only its own threads in native calls.
 *
 * <p>The native side gets a tag (a number), never a Java object: an operation's future waits
 * in {@link #PENDING} until its completion is taken, and events find their listener by the
 * session's tag, so an event that outlives its session finds nothing and is dropped. Futures
 * are completed on the binding's completion threads, never on this thread, so a
 * dependent stage that blocks cannot stall deliveries.
 */
final class Delivery {
    static final long QUEUE;
    private static final ConcurrentHashMap<Long, NativeFuture<?>> PENDING = new ConcurrentHashMap<>();
    private static final ConcurrentHashMap<Long, EventListener> LISTENERS = new ConcurrentHashMap<>();
    private static final AtomicLong TAGS = new AtomicLong();
    /**
     * Completes the futures, so their dependent stages never run on the delivery thread. Our
     * own daemon threads, reused: on a 2-CPU machine the CompletableFuture default executor
     * would start a new thread per completion (the common pool has parallelism 1 there).
     */
    static final Executor COMPLETIONS = Executors.newCachedThreadPool(new ThreadFactory() {
        private final AtomicLong n = new AtomicLong();

        @Override
        public Thread newThread(Runnable r) {
            Thread t = new Thread(r, "cloudauth-completion-" + n.incrementAndGet());
            t.setDaemon(true);
            return t;
        }
    });

    static {
        long q = Lib.cloudauth_queue_new();
        if (q == 0) {
            throw new InternalErrorException("cloudauth_queue_new: " + Lib.lastError());
        }
        QUEUE = q;
        Thread pump = new Thread(() -> run(q), "cloudauth-delivery");
        pump.setDaemon(true);
        pump.start();
    }

    private Delivery() {}

    static long nextTag() {
        return TAGS.incrementAndGet();
    }

    static void addPending(long tag, NativeFuture<?> f) {
        PENDING.put(tag, f);
    }

    static void removePending(long tag) {
        PENDING.remove(tag);
    }

    static int pendingCount() {
        return PENDING.size();
    }

    static int listenerCount() {
        return LISTENERS.size();
    }

    static void addListener(long tag, EventListener listener) {
        LISTENERS.put(tag, listener);
    }

    static void removeListener(long tag) {
        LISTENERS.remove(tag);
    }

    private static void run(long q) {
        long[] out = new long[1];
        while (true) {
            int rc = Lib.cloudauth_queue_wait(q, -1, out);
            if (rc != Lib.OK) {
                if (rc != Lib.ERR_TIMEOUT) {
                    sleepQuietly(); // cannot happen with a live queue; never spin
                }
                continue;
            }
            long c = out[0];
            try {
                dispatch(new Pointer(c));
            } catch (Throwable t) {
                // Nothing may end this thread: a lost completion would hang its future forever.
            } finally {
                Lib.cloudauth_completion_free(c);
            }
        }
    }

    // struct cloudauth_completion: tag @0, result @8, response @16, token @24, token_len @32,
    // error @40, event @48.
    private static void dispatch(Pointer c) {
        long tag = c.getLong(0);
        int result = c.getInt(8);
        long event = c.getLong(48);
        if (event != 0) {
            deliverEvent(tag, new Pointer(event));
            return;
        }
        long response = c.getLong(16);
        NativeFuture<?> f = PENDING.remove(tag);
        if (f == null) { // cannot happen: every tag is registered before its operation starts
            Lib.cloudauth_response_free(response);
            return;
        }
        f.nativeDone();
        if (result != Lib.OK) {
            CloudAuthException error = CloudAuthException.of(result, Lib.string(c.getLong(40)));
            COMPLETIONS.execute(() -> f.completeExceptionally(error));
            return;
        }
        Object value;
        if (response != 0) {
            try {
                value = Response.read(response);
            } finally {
                Lib.cloudauth_response_free(response);
            }
        } else {
            long len = c.getLong(32);
            value = new String(new Pointer(c.getLong(24)).getByteArray(0, Math.toIntExact(len)),
                    java.nio.charset.StandardCharsets.UTF_8);
        }
        COMPLETIONS.execute(() -> f.completeWith(value));
    }

    // struct cloudauth_event: kind @0, reason @8, result @16, http_status @20, duration_ms @24,
    // message @32.
    private static void deliverEvent(long tag, Pointer e) {
        EventListener listener = LISTENERS.get(tag);
        if (listener == null) {
            return;
        }
        Event event = new Event(EventKind.of(e.getInt(0)), Lib.string(e.getLong(8)), ResultCode.of(e.getInt(16)),
                e.getShort(20) & 0xFFFF, Duration.ofMillis(e.getLong(24)), Lib.string(e.getLong(32)));
        try {
            listener.onEvent(event);
        } catch (Throwable t) {
            // A failing listener loses its event only.
        }
    }

    private static void sleepQuietly() {
        try {
            Thread.sleep(10);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }
}
