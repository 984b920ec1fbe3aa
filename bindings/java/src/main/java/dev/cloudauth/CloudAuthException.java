package dev.cloudauth;

/**
 * A failure the cloudauth library reported. Each result code has its own subclass
 * ({@link NetworkException}, {@link CloudAuthTimeoutException}, ...); {@link #code()} tells
 * which. The message is the library's one line: it names the step and why, and never holds a
 * secret or a token.
 */
public class CloudAuthException extends RuntimeException {
    private static final long serialVersionUID = 1L;

    private final ResultCode code;

    CloudAuthException(ResultCode code, String message) {
        super(message);
        this.code = code;
    }

    /** The result code behind this exception. */
    public ResultCode code() {
        return code;
    }

    /** The exception for {@code result}, carrying {@code message}. */
    static CloudAuthException of(int result, String message) {
        ResultCode code = ResultCode.of(result);
        if (message == null || message.isEmpty()) {
            message = "cloudauth failed with " + Lib.string(Lib.cloudauth_result_name(result));
        }
        switch (code) {
            case INVALID_ARGUMENT: return new InvalidArgumentException(message);
            case BUFFER_TOO_SMALL: return new BufferTooSmallException(message);
            case INSECURE_URL: return new InsecureUrlException(message);
            case NETWORK: return new NetworkException(message);
            case TIMEOUT: return new CloudAuthTimeoutException(message);
            case AUTH_REJECTED: return new AuthRejectedException(message);
            case TOKEN_ENDPOINT: return new TokenEndpointException(message);
            case BAD_TOKEN_RESPONSE: return new BadTokenResponseException(message);
            case TOO_LARGE: return new TooLargeException(message);
            case INTERNAL: return new InternalErrorException(message);
            case CANCELLED: return new CancelledException(message);
            case WOULD_BLOCK: return new WouldBlockException(message);
            default: return new CloudAuthException(code, message);
        }
    }

    /** The exception for a failed call just made on this thread (reads cloudauth_last_error). */
    static CloudAuthException last(int result) {
        return of(result, Lib.lastError());
    }
}
