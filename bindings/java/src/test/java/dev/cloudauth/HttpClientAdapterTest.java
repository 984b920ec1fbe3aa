package dev.cloudauth;

import static org.junit.jupiter.api.Assertions.*;

import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.util.concurrent.TimeUnit;
import dev.cloudauth.CloudAuthHttpClient;
import org.junit.jupiter.api.Test;

/** The adapters' rule through java.net.http, blocking send(). */
class HttpClientAdapterTest extends AdapterContract {
    boolean async() {
        return false;
    }

    @Override
    void construct(Session session) {
        new CloudAuthHttpClient(session);
    }

    @Override
    Client client(Session session) {
        CloudAuthHttpClient http = new CloudAuthHttpClient(session);
        return new Client() {
            @Override
            public Result get(String url) throws Exception {
                return call(http, HttpRequest.newBuilder(URI.create(url)).build());
            }

            @Override
            public Result post(String url, String body, boolean replayable) throws Exception {
                HttpRequest.BodyPublisher p = HttpRequest.BodyPublishers.ofString(body);
                if (!replayable) {
                    p = HttpRequest.BodyPublishers.fromPublisher(p, body.length());
                }
                return call(http, HttpRequest.newBuilder(URI.create(url)).POST(p).build());
            }

            @Override
            public Result getStripping(String url, String path) throws Exception {
                // java.net.http has no hook between hops: a client that strips the header from
                // hops to `path` (as some platforms do on redirects) is modelled by the wrapper's
                // own hop logic seeing the header removed by a delegating HttpClient.
                HttpClient inner = new StrippingClient(HttpClient.newHttpClient(), path);
                return call(new CloudAuthHttpClient(session, inner, HttpClient.Redirect.NORMAL),
                        HttpRequest.newBuilder(URI.create(url)).build());
            }
        };
    }

    private Result call(CloudAuthHttpClient http, HttpRequest request) throws Exception {
        HttpResponse<String> r = async()
                ? http.sendAsync(request, HttpResponse.BodyHandlers.ofString()).get(20, TimeUnit.SECONDS)
                : http.send(request, HttpResponse.BodyHandlers.ofString());
        return new Result(r.statusCode(), r.body());
    }

    /**
     * The wrapper adds the header and hands the request to the HttpClient: a publisher over an
     * InputStream (not replayable, sent chunked) and BodyHandlers.ofInputStream stream natively,
     * in bounded memory, through it.
     */
    @Test
    void largeBodiesStreamThroughTheWrapper() throws Exception {
        long up = 32L << 20;
        long down = 64L << 20;
        Servers.reset();
        try (Session s = new Session(Servers.standinConfig().build())) {
            CloudAuthHttpClient http = new CloudAuthHttpClient(s);
            long base = StreamTest.heapUsed();
            long[] grew = {Long.MIN_VALUE, Long.MIN_VALUE};
            java.io.InputStream generated = new java.io.InputStream() {
                long sent;

                @Override
                public int read() {
                    throw new UnsupportedOperationException("read in pieces");
                }

                @Override
                public int read(byte[] b, int off, int len) {
                    if (sent >= up) {
                        return -1;
                    }
                    int n = (int) Math.min(len, up - sent);
                    java.util.Arrays.fill(b, off, off + n, (byte) 'u');
                    if (sent < up / 2 && sent + n >= up / 2) {
                        grew[0] = StreamTest.heapUsed() - base;
                    }
                    sent += n;
                    return n;
                }
            };
            HttpRequest post = HttpRequest.newBuilder(URI.create(Servers.standin() + "/echo?jdk=up"))
                    .POST(HttpRequest.BodyPublishers.ofInputStream(() -> generated)).build();
            HttpResponse<java.io.InputStream> r = stream(http, post);
            assertEquals(200, r.statusCode());
            try (java.io.InputStream in = r.body()) {
                assertEquals(up, OkHttpInterceptorTest.count(in, (byte) 'u', up, grew, 1, base));
            }
            String h = StreamTest.loggedHeaders("jdk=up");
            assertTrue(h.contains("\"transfer-encoding\": \"chunked\"") && h.contains("Bearer "), h);
            assertTrue(grew[0] != Long.MIN_VALUE && grew[0] < 8 << 20, "heap grew by " + grew[0] + " halfway through the upload");
            assertTrue(grew[1] != Long.MIN_VALUE && grew[1] < 8 << 20, "heap grew by " + grew[1] + " halfway through the echo");

            grew[1] = Long.MIN_VALUE;
            r = stream(http, HttpRequest.newBuilder(URI.create(Servers.standin() + "/big?bytes=" + down)).build());
            assertEquals(200, r.statusCode());
            try (java.io.InputStream in = r.body()) {
                assertEquals(down, OkHttpInterceptorTest.count(in, (byte) 'a', down, grew, 1, base));
            }
            assertTrue(grew[1] != Long.MIN_VALUE && grew[1] < 8 << 20, "heap grew by " + grew[1] + " halfway through the download");
            assertEquals(1, Servers.tokenRequests());
        }
    }

    private HttpResponse<java.io.InputStream> stream(CloudAuthHttpClient http, HttpRequest request) throws Exception {
        return async() ? http.sendAsync(request, HttpResponse.BodyHandlers.ofInputStream()).get(20, TimeUnit.SECONDS)
                : http.send(request, HttpResponse.BodyHandlers.ofInputStream());
    }

    @Test
    void aClientThatFollowsRedirectsItselfIsRefused() {
        HttpClient following = HttpClient.newBuilder().followRedirects(HttpClient.Redirect.NORMAL).build();
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> new CloudAuthHttpClient(session, following, HttpClient.Redirect.NORMAL));
        assertTrue(e.getMessage().contains("Redirect.NEVER"), e.getMessage());
    }

    @Test
    void redirectsNeverReturnsTheRedirect() throws Exception {
        CloudAuthHttpClient never = new CloudAuthHttpClient(session, HttpClient.newHttpClient(), HttpClient.Redirect.NEVER);
        assertEquals(307, call(never, HttpRequest.newBuilder(URI.create(main + "/to_same?to=echo")).build()).status);
    }

    /** A client that removes Authorization from requests to one path, then sends with the real one. */
    static final class StrippingClient extends DelegatingHttpClient {
        private final String path;

        StrippingClient(HttpClient inner, String path) {
            super(inner);
            this.path = path;
        }

        @Override
        HttpRequest rewrite(HttpRequest request) {
            if (!request.uri().getPath().equals(path)) {
                return request;
            }
            HttpRequest.Builder b = HttpRequest.newBuilder(request.uri()).method(request.method(),
                    request.bodyPublisher().orElse(HttpRequest.BodyPublishers.noBody()));
            request.headers().map().forEach((k, vs) -> {
                if (!k.equalsIgnoreCase("Authorization")) {
                    vs.forEach(v -> b.header(k, v));
                }
            });
            return b.build();
        }
    }
}
