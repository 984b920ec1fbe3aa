package dev.cloudauth;

/** The outcome codes of the C ABI ({@code cloudauth_result}); the numbers are ABI and never change. */
public enum ResultCode {
    OK(0),
    INVALID_ARGUMENT(1),
    BUFFER_TOO_SMALL(2),
    INSECURE_URL(3),
    NETWORK(4),
    TIMEOUT(5),
    AUTH_REJECTED(6),
    TOKEN_ENDPOINT(7),
    BAD_TOKEN_RESPONSE(8),
    TOO_LARGE(9),
    INTERNAL(10),
    CANCELLED(11),
    WOULD_BLOCK(12),
    /** A number this binding does not know (from a newer library). */
    UNKNOWN(-1);

    private final int value;

    ResultCode(int value) {
        this.value = value;
    }

    /** The C value. */
    public int value() {
        return value;
    }

    static ResultCode of(int value) {
        ResultCode[] all = values();
        return value >= 0 && value < all.length - 1 ? all[value] : UNKNOWN;
    }
}
