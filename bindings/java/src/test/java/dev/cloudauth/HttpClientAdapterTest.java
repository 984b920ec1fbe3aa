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
