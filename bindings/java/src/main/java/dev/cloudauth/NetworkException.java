package dev.cloudauth;

/** DNS, connect, TLS, or a connection reset. */
public final class NetworkException extends CloudAuthException {
    private static final long serialVersionUID = 1L;

    NetworkException(String message) {
        super(ResultCode.NETWORK, message);
    }
}
