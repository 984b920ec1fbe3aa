package dev.cloudauth;

/** A connect or total timeout expired. */
public final class CloudAuthTimeoutException extends CloudAuthException {
    private static final long serialVersionUID = 1L;

    CloudAuthTimeoutException(String message) {
        super(ResultCode.TIMEOUT, message);
    }
}
