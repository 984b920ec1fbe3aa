package dev.cloudauth;

/** The token response was not usable (not JSON, no access_token, bad expires_in or token_type). */
public final class BadTokenResponseException extends CloudAuthException {
    private static final long serialVersionUID = 1L;

    BadTokenResponseException(String message) {
        super(ResultCode.BAD_TOKEN_RESPONSE, message);
    }
}
