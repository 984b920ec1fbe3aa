package dev.cloudauth;

/** No usable token without I/O (a fetch was started). */
public final class WouldBlockException extends CloudAuthException {
    private static final long serialVersionUID = 1L;

    WouldBlockException(String message) {
        super(ResultCode.WOULD_BLOCK, message);
    }
}
