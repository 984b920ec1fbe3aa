package dev.cloudauth;

/** The token endpoint refused the credentials. */
public final class AuthRejectedException extends CloudAuthException {
    private static final long serialVersionUID = 1L;

    AuthRejectedException(String message) {
        super(ResultCode.AUTH_REJECTED, message);
    }
}
