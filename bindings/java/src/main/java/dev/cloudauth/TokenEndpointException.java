package dev.cloudauth;

/** The token endpoint kept failing (5xx, 429, other status) after the allowed retries. */
public final class TokenEndpointException extends CloudAuthException {
    private static final long serialVersionUID = 1L;

    TokenEndpointException(String message) {
        super(ResultCode.TOKEN_ENDPOINT, message);
    }
}
