package dev.cloudauth;

/** A NULL or malformed argument, an unknown configuration key, a bad value, CR/LF in a header. */
public final class InvalidArgumentException extends CloudAuthException {
    private static final long serialVersionUID = 1L;

    InvalidArgumentException(String message) {
        super(ResultCode.INVALID_ARGUMENT, message);
    }
}
