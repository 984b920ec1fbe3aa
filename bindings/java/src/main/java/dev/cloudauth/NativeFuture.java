package dev.cloudauth;

import java.util.concurrent.CompletableFuture;

/**
 * A native async operation as a CompletableFuture. {@link #cancel} also cancels the native
 * operation ({@code cloudauth_op_cancel}); the operation handle is freed exactly once, when
 * both the start call has returned and the completion has been taken. The future holds its
 * session, so a session with operations in flight is not cleaned up under them.
 */
final class NativeFuture<T> extends CompletableFuture<T> {
    private final Object lock = new Object();
    @SuppressWarnings("unused") // keeps the session reachable while the operation runs
    private final Session session;
    private long op;
    private boolean done;

    NativeFuture(Session session) {
        this.session = session;
    }

    /** The start call returned this handle. */
    void started(long handle) {
        synchronized (lock) {
            if (done) {
                Lib.cloudauth_op_free(handle);
                return;
            }
            op = handle;
            if (isCancelled()) {
                Lib.cloudauth_op_cancel(handle);
            }
        }
    }

    /** The completion was taken from the queue (on the delivery thread). */
    void nativeDone() {
        synchronized (lock) {
            done = true;
            if (op != 0) {
                Lib.cloudauth_op_free(op);
                op = 0;
            }
        }
    }

    @SuppressWarnings("unchecked")
    void completeWith(Object value) {
        complete((T) value);
    }

    /** Cancels the future and the native operation (which then ends with CANCELLED, ignored). */
    @Override
    public boolean cancel(boolean mayInterruptIfRunning) {
        boolean cancelled = super.cancel(mayInterruptIfRunning);
        if (cancelled) {
            synchronized (lock) {
                if (op != 0) {
                    Lib.cloudauth_op_cancel(op);
                }
            }
        }
        return cancelled;
    }

    /** Dependent stages are plain futures: cancelling one does not reach the operation. */
    @Override
    public <U> CompletableFuture<U> newIncompleteFuture() {
        return new CompletableFuture<>();
    }
}
