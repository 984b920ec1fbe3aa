package dev.cloudauth;

/** Credentials or a token would travel over plain http to a non-loopback host; nothing was sent. */
public final class InsecureUrlException extends CloudAuthException {
    private static final long serialVersionUID = 1L;

    InsecureUrlException(String message) {
        super(ResultCode.INSECURE_URL, message);
    }
}
