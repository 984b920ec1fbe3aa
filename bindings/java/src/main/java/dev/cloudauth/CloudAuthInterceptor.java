package dev.cloudauth;

import java.io.IOException;
import java.util.Objects;
import okhttp3.HttpUrl;
import okhttp3.Interceptor;
import okhttp3.OkHttpClient;
import okhttp3.Request;
import okhttp3.RequestBody;
import okhttp3.Response;

/**
 * Authorizes OkHttp calls with a cloudauth {@link Session}, by the adapters' rule
 * (docs/adapters.md):
 *
 * <ul>
 *   <li>Only requests to the session's origin (scheme, host and port of its base_url) get
 *       {@code Authorization: Bearer <token>}; any other request passes untouched.
 *   <li>Redirects: OkHttp follows them below this (application) interceptor. The companion
 *       network interceptor {@link #redirectGuard()} sees every hop and removes the
 *       Authorization header from any hop of an origin call that leaves the origin (OkHttp
 *       itself also drops it on a hop to another host); no hop gets the token added.
 *   <li>A 401 counts as "the server rejected our token" only when the final hop, as it went on
 *       the wire, carried exactly the header this interceptor added. Then that token is always
 *       dropped with {@code invalidate_token} (only if still current), and the request is sent
 *       once more with a fresh token if its body can be replayed (no body, or not
 *       one-shot/duplex); a one-shot body's 401 is returned unchanged, the token still dropped.
 *       Any other 401 is returned unchanged and drops nothing.
 * </ul>
 *
 * <pre>{@code
 * OkHttpClient client = CloudAuthInterceptor.install(new OkHttpClient.Builder(), session).build();
 * ApiClient api = new ApiClient(client);  // an Aspose Cloud Java SDK, generated on OkHttp
 * }</pre>
 *
 * Works with okhttp3 4.x and 5.x. The session is not owned: close it after the client.
 */
public final class CloudAuthInterceptor implements Interceptor {
    private static final String AUTHORIZATION = "Authorization";

    private final Session session;
    private final Origin origin;
    private final Interceptor guard = this::guard;

    /** The header for the last token: the same token reuses its String. Replaced whole. */
    private volatile Bearer last;

    private static final class Bearer {
        final String token;
        final String header;

        Bearer(String token) {
            this.token = token;
            this.header = "Bearer " + token;
        }
    }

    /**
     * @throws IllegalArgumentException the session has no http(s) base_url
     * @throws dev.cloudauth.InsecureUrlException base_url is plain http to a non-loopback host
     *     (without allow_insecure_http)
     */
    public CloudAuthInterceptor(Session session) {
        this.session = Objects.requireNonNull(session, "session");
        this.origin = Origin.ofSession(session);
    }

    /** Adds an interceptor for {@code session} and its redirect guard to {@code builder}. */
    public static OkHttpClient.Builder install(OkHttpClient.Builder builder, Session session) {
        CloudAuthInterceptor auth = new CloudAuthInterceptor(session);
        return builder.addInterceptor(auth).addNetworkInterceptor(auth.redirectGuard());
    }

    /** The network interceptor that keeps the token off every hop outside the origin. */
    public Interceptor redirectGuard() {
        return guard;
    }

    private boolean atOrigin(HttpUrl url) {
        return origin.matches(url.scheme(), url.host(), url.port());
    }

    @Override
    public Response intercept(Chain chain) throws IOException {
        Request request = chain.request();
        if (!atOrigin(request.url())) {
            return chain.proceed(request);
        }
        Bearer used = bearer(token());
        Request sent = request.newBuilder().header(AUTHORIZATION, used.header).build();
        Response response = chain.proceed(sent);
        if (!rejected(response, used)) {
            return response;
        }
        if (!replayable(sent.body())) {
            return response; // a one-shot body cannot go again; the next call gets a new token
        }
        response.close();
        Bearer fresh = bearer(token());
        Response again = chain.proceed(sent.newBuilder().header(AUTHORIZATION, fresh.header).build());
        rejected(again, fresh); // not resent again, but that token is dropped too
        return again;
    }

    /**
     * Whether {@code response} is a 401 to a hop that carried {@code used}: then that token is
     * dropped, always, whether or not the request can be resent. Only if it is still the
     * current one (atomically, in the library): when many requests get a 401 at once, one new
     * token serves them all.
     */
    private boolean rejected(Response response, Bearer used) {
        if (response.code() != 401 || !carried(response, used.header)) {
            return false;
        }
        session.invalidate(used.token);
        return true;
    }

    /**
     * The session's token. A failure to get one is an IOException (its cause the
     * CloudAuthException), as OkHttp expects of an interceptor: an async call then reaches
     * {@code onFailure} instead of killing a dispatcher thread.
     */
    private String token() throws IOException {
        try {
            return session.token();
        } catch (CloudAuthException e) {
            throw new IOException(e.getMessage(), e);
        }
    }

    /** Whether the final hop, as sent on the wire, was at the origin with our header. */
    private boolean carried(Response response, String header) {
        Response network = response.networkResponse();
        if (network == null) {
            return false; // from the cache: no server just rejected anything
        }
        Request hop = network.request();
        return atOrigin(hop.url()) && header.equals(hop.header(AUTHORIZATION));
    }

    private static boolean replayable(RequestBody body) {
        return body == null || !(body.isOneShot() || body.isDuplex());
    }

    private Response guard(Chain chain) throws IOException {
        Request hop = chain.request();
        if (hop.header(AUTHORIZATION) != null && !atOrigin(hop.url()) && atOrigin(chain.call().request().url())) {
            hop = hop.newBuilder().removeHeader(AUTHORIZATION).build();
        }
        return chain.proceed(hop);
    }

    private Bearer bearer(String token) {
        Bearer b = last;
        if (b == null || !b.token.equals(token)) {
            b = new Bearer(token);
            last = b;
        }
        return b;
    }

    @Override
    public String toString() {
        return "CloudAuthInterceptor{origin=" + origin + "}";
    }
}
