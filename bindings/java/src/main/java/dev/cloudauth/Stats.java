package dev.cloudauth;

/** A session's counters ({@code cloudauth_stats}); reading them takes no lock and sends nothing. */
public final class Stats {
    static final int SIZE = 9 * 8;

    private final long tokenRequests;
    private final long tokenFailures;
    private final long backgroundRefreshes;
    private final long apiRequests;
    private final long unauthorizedResends;
    private final long sharedCacheHits;
    private final long sharedCacheErrors;
    private final long tokenExpiresInMs;
    private final long connectionResends;

    Stats(long[] f) {
        tokenRequests = f[0];
        tokenFailures = f[1];
        backgroundRefreshes = f[2];
        apiRequests = f[3];
        unauthorizedResends = f[4];
        sharedCacheHits = f[5];
        sharedCacheErrors = f[6];
        tokenExpiresInMs = f[7];
        connectionResends = f[8];
    }

    /** HTTP requests sent to the token endpoint, retries included. */
    public long tokenRequests() {
        return tokenRequests;
    }

    /** Token fetches that ended in an error, after retries. */
    public long tokenFailures() {
        return tokenFailures;
    }

    /** Successful refreshes done off the callers' threads. */
    public long backgroundRefreshes() {
        return backgroundRefreshes;
    }

    /** Requests sent by {@link Session#request} and {@link Session#requestAsync}, resends included. */
    public long apiRequests() {
        return apiRequests;
    }

    /** API requests resent after a 401. */
    public long unauthorizedResends() {
        return unauthorizedResends;
    }

    /** Tokens taken from the file or Redis cache instead of the token endpoint. */
    public long sharedCacheHits() {
        return sharedCacheHits;
    }

    /** File or Redis cache operations that failed (the call went on without the cache). */
    public long sharedCacheErrors() {
        return sharedCacheErrors;
    }

    /** The current token's remaining life in milliseconds; -1 when there is none. */
    public long tokenExpiresInMs() {
        return tokenExpiresInMs;
    }

    /** Requests sent once more on a new connection because a kept-alive one failed first. */
    public long connectionResends() {
        return connectionResends;
    }

    @Override
    public String toString() {
        return "Stats{tokenRequests=" + tokenRequests + ", tokenFailures=" + tokenFailures + ", backgroundRefreshes="
                + backgroundRefreshes + ", apiRequests=" + apiRequests + ", unauthorizedResends=" + unauthorizedResends
                + ", sharedCacheHits=" + sharedCacheHits + ", sharedCacheErrors=" + sharedCacheErrors
                + ", tokenExpiresInMs=" + tokenExpiresInMs + ", connectionResends=" + connectionResends + "}";
    }
}
