package dev.cloudauth;

import java.io.IOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpHeaders;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;

/**
 * A {@link HttpClient} whose requests to the session's origin carry the session's token, by
 * the adapters' rule (docs/adapters.md):
 *
 * <ul>
 *   <li>Only requests to the origin (scheme, host and port of the session's base_url) get
 *       {@code Authorization: Bearer <token>}.
 *   <li>Redirects are followed here, not by the HttpClient (which must be built with
 *       {@code followRedirects(Redirect.NEVER)}, the JDK's default): each hop carries the token
 *       only while the chain has not left the origin; once a hop leaves it, no later hop gets
 *       it, not even one back at the origin. The policy is {@link HttpClient.Redirect#NORMAL}'s
 *       (never https to http) or ALWAYS, at most 5 hops; 303, and 301/302 after a POST, become
 *       a GET without a body; 307/308 keep method and body, when the body can be replayed.
 *   <li>A 401 to a hop that carried our token (as {@code response.request()} reports the
 *       request): always {@code invalidate_token} with exactly that token (dropped only if
 *       still current); then the hop is sent once more with a fresh token if its body can be
 *       replayed (none, or BodyPublishers.ofString/ofByteArray/ofFile/noBody), else the 401 is
 *       returned unchanged (the token still dropped). Any other 401 is returned unchanged and
 *       drops nothing.
 * </ul>
 *
 * <p>The session is not owned: close it after the last request.
 */
public final class CloudAuthHttpClient {
    private static final int MAX_REDIRECTS = 5;
    private static final String AUTHORIZATION = "Authorization";

    private final Session session;
    private final HttpClient client;
    private final HttpClient.Redirect redirects;
    private final Origin origin;

    /** Over a new HttpClient; redirects followed as {@link HttpClient.Redirect#NORMAL}. */
    public CloudAuthHttpClient(Session session) {
        this(session, HttpClient.newHttpClient(), HttpClient.Redirect.NORMAL);
    }

    /**
     * Over {@code client} (built with {@code followRedirects(NEVER)}), following redirects by
     * {@code redirects} (NEVER returns every 3xx as it came).
     *
     * @throws IllegalArgumentException the client follows redirects itself, or the session has no base_url
     */
    public CloudAuthHttpClient(Session session, HttpClient client, HttpClient.Redirect redirects) {
        this.session = Objects.requireNonNull(session, "session");
        this.client = Objects.requireNonNull(client, "client");
        this.redirects = Objects.requireNonNull(redirects, "redirects");
        if (client.followRedirects() != HttpClient.Redirect.NEVER) {
            throw new IllegalArgumentException("build the HttpClient with followRedirects(Redirect.NEVER): "
                    + "CloudAuthHttpClient follows redirects itself, so that the token stays at its origin");
        }
        this.origin = Origin.ofSession(session);
    }

    /** The HttpClient underneath. */
    public HttpClient client() {
        return client;
    }

    /** As {@link HttpClient#send}, under the rules above. */
    public <T> HttpResponse<T> send(HttpRequest request, HttpResponse.BodyHandler<T> handler)
            throws IOException, InterruptedException {
        Exchange<T> ex = new Exchange<>(request, handler);
        HttpRequest hop = request;
        while (true) {
            if (ex.tokenAllowed) {
                hop = ex.attach(hop, session.token());
            }
            HttpResponse<T> response = client.send(hop, ex.handler);
            hop = ex.next(response);
            if (hop == null) {
                return response;
            }
        }
    }

    /** As {@link HttpClient#sendAsync}, under the rules above; no thread waits for a token. */
    public <T> CompletableFuture<HttpResponse<T>> sendAsync(HttpRequest request, HttpResponse.BodyHandler<T> handler) {
        Exchange<T> ex = new Exchange<>(request, handler);
        return hopAsync(ex, request);
    }

    private <T> CompletableFuture<HttpResponse<T>> hopAsync(Exchange<T> ex, HttpRequest hop) {
        CompletableFuture<HttpRequest> ready;
        if (!ex.tokenAllowed) {
            ready = CompletableFuture.completedFuture(hop);
        } else {
            String cached = session.tokenIfCached();
            ready = cached != null ? CompletableFuture.completedFuture(ex.attach(hop, cached))
                    : session.tokenAsync().thenApply(t -> ex.attach(hop, t));
        }
        return ready.thenCompose(h -> client.sendAsync(h, ex.handler)).thenCompose(response -> {
            HttpRequest next = ex.next(response);
            return next == null ? CompletableFuture.completedFuture(response) : hopAsync(ex, next);
        });
    }

    /** One call: where its hops went, what they carried. */
    private final class Exchange<T> {
        final HttpRequest original;
        final HttpResponse.BodyHandler<T> handler;
        boolean tokenAllowed;
        String token; // the token on the current hop, or null
        HttpRequest current;
        boolean resent;
        int hops;

        Exchange(HttpRequest original, HttpResponse.BodyHandler<T> userHandler) {
            this.original = Objects.requireNonNull(original, "request");
            Objects.requireNonNull(userHandler, "handler");
            this.current = original;
            this.tokenAllowed = origin.matches(original.uri());
            // A redirect that will be followed is drained, not handed to the user's handler. A
            // 401 goes to the user's handler: whether it is resent depends on the request that
            // got it (next()), which the handler cannot see.
            this.handler = info -> plan(info.statusCode(), info.headers()) == Plan.REDIRECT
                    ? HttpResponse.BodySubscribers.replacing(null) : userHandler.apply(info);
        }

        HttpRequest attach(HttpRequest hop, String t) {
            token = t;
            current = copy(hop, hop.uri(), hop.method(), hop.bodyPublisher(), "Bearer " + t);
            return current;
        }

        /** What follows a response with this status and these headers: a hop, or null (the end). No side effects. */
        Plan plan(int status, HttpHeaders headers) {
            if (status == 401) {
                return token != null ? Plan.REJECTED : null;
            }
            if (redirects == HttpClient.Redirect.NEVER || hops >= MAX_REDIRECTS || !isRedirect(status)) {
                return null;
            }
            URI target = target(headers);
            if (target == null) {
                return null;
            }
            if (redirects == HttpClient.Redirect.NORMAL && "https".equalsIgnoreCase(current.uri().getScheme())
                    && "http".equalsIgnoreCase(target.getScheme())) {
                return null;
            }
            if ((status == 307 || status == 308) && !replayable(current)) {
                return null;
            }
            return Plan.REDIRECT;
        }

        /** The next hop for {@code response}, without a token (attach adds it), or null. */
        HttpRequest next(HttpResponse<T> response) {
            Plan p = plan(response.statusCode(), response.headers());
            if (p == null) {
                return null;
            }
            if (p == Plan.REJECTED) {
                if (!carried(response)) {
                    return null;
                }
                // Always, even when the hop cannot go again: the next call gets a new token.
                session.invalidate(token); // only if it is still the session's current token
                if (resent || !replayable(current)) {
                    return null;
                }
                closeBody(response);
                resent = true;
                return copy(current, current.uri(), current.method(), current.bodyPublisher(), null);
            }
            hops++;
            URI target = target(response.headers());
            int status = response.statusCode();
            String method = current.method();
            Optional<HttpRequest.BodyPublisher> body = current.bodyPublisher();
            if ((status == 303 && !"HEAD".equals(method)) || ((status == 301 || status == 302) && "POST".equals(method))) {
                method = "GET";
                body = Optional.empty();
            }
            tokenAllowed = tokenAllowed && origin.matches(target);
            token = null;
            current = copy(current, target, method, body, null);
            return current;
        }

        /** Whether the request that got this response, as the client reports it, was at the origin with our header. */
        private boolean carried(HttpResponse<T> response) {
            HttpRequest sent = response.request();
            return origin.matches(sent.uri())
                    && ("Bearer " + token).equals(sent.headers().firstValue(AUTHORIZATION).orElse(null));
        }

        private URI target(HttpHeaders headers) {
            Optional<String> location = headers.firstValue("Location");
            if (!location.isPresent()) {
                return null;
            }
            try {
                URI target = current.uri().resolve(location.get());
                String scheme = target.getScheme() == null ? "" : target.getScheme().toLowerCase(Locale.ROOT);
                return (scheme.equals("http") || scheme.equals("https")) && target.getHost() != null ? target : null;
            } catch (IllegalArgumentException e) {
                return null;
            }
        }
    }

    /** A 401 body the user's handler made into a stream is closed before the resend. */
    private static void closeBody(HttpResponse<?> response) {
        Object body = response.body();
        if (body instanceof AutoCloseable) {
            try {
                ((AutoCloseable) body).close();
            } catch (Exception e) {
                // the stream of a response we drop: nothing to report
            }
        }
    }

    private enum Plan {
        REJECTED,
        REDIRECT
    }

    private static boolean isRedirect(int status) {
        return status == 301 || status == 302 || status == 303 || status == 307 || status == 308;
    }

    /**
     * Whether the request's body can be sent again: none, or one of the JDK's publishers that
     * produce the same bytes on every subscription (ofString, ofByteArray, ofFile, noBody).
     * fromPublisher, ofInputStream and ofByteArrays may be one-shot: not replayed.
     */
    static boolean replayable(HttpRequest request) {
        Optional<HttpRequest.BodyPublisher> body = request.bodyPublisher();
        if (!body.isPresent()) {
            return true;
        }
        String name = body.get().getClass().getName();
        return name.equals("jdk.internal.net.http.RequestPublishers$ByteArrayPublisher")
                || name.equals("jdk.internal.net.http.RequestPublishers$StringPublisher")
                || name.equals("jdk.internal.net.http.RequestPublishers$EmptyPublisher")
                || name.equals("jdk.internal.net.http.RequestPublishers$FilePublisher");
    }

    /** {@code src} to {@code uri} with {@code method} and {@code body}; Authorization is {@code auth} or none. */
    private static HttpRequest copy(HttpRequest src, URI uri, String method, Optional<HttpRequest.BodyPublisher> body, String auth) {
        HttpRequest.Builder b = HttpRequest.newBuilder(uri)
                .method(method, body.orElse(HttpRequest.BodyPublishers.noBody()))
                .expectContinue(src.expectContinue());
        src.timeout().ifPresent(b::timeout);
        src.version().ifPresent(b::version);
        for (Map.Entry<String, List<String>> h : src.headers().map().entrySet()) {
            if (!h.getKey().equalsIgnoreCase(AUTHORIZATION)) {
                for (String v : h.getValue()) {
                    b.header(h.getKey(), v);
                }
            }
        }
        if (auth != null) {
            b.header(AUTHORIZATION, auth);
        }
        return b.build();
    }

    @Override
    public String toString() {
        return "CloudAuthHttpClient{origin=" + origin + ", redirects=" + redirects + "}";
    }
}
