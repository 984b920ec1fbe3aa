package dev.cloudauth;

/** An async operation was cancelled, or its session was closed before it finished. */
public final class CancelledException extends CloudAuthException {
    private static final long serialVersionUID = 1L;

    CancelledException(String message) {
        super(ResultCode.CANCELLED, message);
    }
}
