package dev.cloudauth;

/** A bug in cloudauth, caught at the boundary; the process is unharmed. */
public final class InternalErrorException extends CloudAuthException {
    private static final long serialVersionUID = 1L;

    InternalErrorException(String message) {
        super(ResultCode.INTERNAL, message);
    }
}
