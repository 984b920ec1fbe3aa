package dev.cloudauth;

/** A response exceeded its size cap (1 MiB for tokens, max_response_bytes for requests). */
public final class TooLargeException extends CloudAuthException {
    private static final long serialVersionUID = 1L;

    TooLargeException(String message) {
        super(ResultCode.TOO_LARGE, message);
    }
}
