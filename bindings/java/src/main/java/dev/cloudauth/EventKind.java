package dev.cloudauth;

/** What an {@link Event} reports ({@code cloudauth_event_kind}). */
public enum EventKind {
    /** A new token arrived. */
    TOKEN_FETCHED,
    /** A token fetch ended in an error, after its retries. */
    TOKEN_FETCH_FAILED,
    /** A transient token-endpoint failure; the next attempt follows after {@link Event#duration()}. */
    RETRY,
    /** An API answered 401: the token was dropped and the request resent. */
    UNAUTHORIZED,
    /** The file or Redis token cache failed; the call went on without it. */
    CACHE_UNAVAILABLE,
    /** A kind this binding does not know (from a newer library). */
    UNKNOWN;

    static EventKind of(int value) {
        EventKind[] all = values();
        return value >= 1 && value < all.length ? all[value - 1] : UNKNOWN;
    }
}
