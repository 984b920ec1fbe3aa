package dev.cloudauth;

/** A buffer was too small (handled inside the binding; seen only if the token keeps growing). */
public final class BufferTooSmallException extends CloudAuthException {
    private static final long serialVersionUID = 1L;

    BufferTooSmallException(String message) {
        super(ResultCode.BUFFER_TOO_SMALL, message);
    }
}
