package dev.cloudauth;

import static org.junit.jupiter.api.Assertions.*;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * The adapters' rule (docs/adapters.md), one set of cases run against each adapter: the OkHttp
 * interceptor and the java.net.http wrapper (send and sendAsync). Real servers: the hostile
 * server's two origins ("main" is the session's base_url) and the stand-in.
 */
abstract class AdapterContract {
    /** What the test saw: the final status and body. */
    static final class Result {
        final int status;
        final String body;

        Result(int status, String body) {
            this.status = status;
            this.body = body;
        }

        @Override
        public String toString() {
            return status + " " + body;
        }
    }

    /** The adapter under test, over {@code session}. */
    interface Client extends AutoCloseable {
        Result get(String url) throws Exception;

        /** POST with a body the adapter can replay, or one it cannot (one-shot / a plain publisher). */
        Result post(String url, String body, boolean replayable) throws Exception;

        /** GET through a client whose platform strips Authorization from hops to {@code path} (a stand-in for platforms that drop it on redirects). */
        Result getStripping(String url, String path) throws Exception;

        @Override
        default void close() {}
    }

    abstract Client client(Session session);

    /** The constructor's checks: IllegalArgumentException or the library's InsecureUrlException. */
    abstract void construct(Session session);

    String main;
    String other;
    Session session;
    Client client;

    @BeforeEach
    void open() {
        String[] h = Servers.hostile();
        main = h[0];
        other = h[1];
        session = new Session(Servers.hostileConfig().build());
        client = client(session);
    }

    @AfterEach
    void close() {
        client.close();
        session.close();
    }

    @Test
    void theTokenGoesOnlyToTheSessionsOrigin() throws Exception {
        assertEquals("nonce= auth=valid method=GET len=0", client.get(main + "/echo").body);
        assertEquals("nonce= auth=none method=GET len=0", client.get(other + "/echo").body);
        assertEquals(1, session.stats().tokenRequests());
    }

    @Test
    void aRedirectLeavingTheOriginDropsTheToken() throws Exception {
        Result r = client.get(main + "/to_other?to=echo");
        assertEquals("nonce= auth=none method=GET len=0", r.body);
        // ...and it does not come back on a hop that returns to the origin.
        r = client.get(main + "/to_other_and_back?to=echo");
        assertEquals("nonce= auth=none method=GET len=0", r.body);
    }

    @Test
    void aSameOriginRedirectKeepsTheToken() throws Exception {
        assertEquals("nonce= auth=valid method=GET len=0", client.get(main + "/to_same?to=echo").body);
        // 307 keeps method and a replayable body.
        assertEquals("nonce= auth=valid method=POST len=5", client.post(main + "/to_same?to=echo", "hello", true).body);
    }

    @Test
    void a401ToOurTokenDropsItAndResendsOnce() throws Exception {
        String before = session.token();
        Result r = client.get(main + "/401_once?nonce=" + getClass().getSimpleName() + "-get");
        assertEquals(200, r.status, r.toString());
        assertEquals("fresh auth=valid", r.body);
        assertNotEquals(before, session.token());
        assertEquals(2, session.stats().tokenRequests());
        // A replayable body is sent again.
        r = client.post(main + "/401_once?nonce=" + getClass().getSimpleName() + "-post", "body", true);
        assertEquals("fresh auth=valid", r.body);
    }

    @Test
    void aSecond401IsReturnedAfterOneResend() throws Exception {
        Result r = client.get(main + "/always_401");
        assertEquals(401, r.status);
        assertEquals("denied auth=valid", r.body, "the resend carried a fresh, valid token");
        assertEquals(2, session.stats().tokenRequests(), "one new token, one resend, no more");
        // The resend's 401 carried our token too: that token was dropped as well.
        session.token();
        assertEquals(3, session.stats().tokenRequests());
    }

    @Test
    void aNonReplayableBodyIsNotResentButTheRejectedTokenIsDropped() throws Exception {
        // The stand-in counts token and API requests itself; its next API answer is a 401.
        Servers.reset();
        try (Session s = new Session(Servers.standinConfig().build()); Client c = client(s)) {
            assertEquals(200, c.get(Servers.standin() + "/headers").status);
            Servers.configure("{\"api_script\": [{\"status\": 401}]}");
            long api = Servers.apiRequests();
            Result r = c.post(Servers.standin() + "/echo", "once", false);
            assertEquals(401, r.status, r.toString());
            assertEquals(api + 1, Servers.apiRequests(), "not resent");
            assertEquals(1, Servers.tokenRequests(), "no token fetched for a resend");
            // The rejected token is gone: the next request fetches a new one and gets through.
            assertEquals(200, c.get(Servers.standin() + "/headers").status);
            assertEquals(2, Servers.tokenRequests());
        }
    }

    @Test
    void theOriginIsTheLibrarysBaseUrlFromTheEnvironment() throws Exception {
        // Set where the library reads it (libc's environment); System.getenv keeps its copy from
        // the JVM's start, so only the library's origin knows this base_url.
        String prefix = "CLOUDAUTH_ADAPTER_TEST_";
        LibC.INSTANCE.setenv(prefix + "BASE_URL", Servers.standin(), 1);
        Servers.reset();
        try (Recorder other = new Recorder();
                Session s = new Session(Config.builder().clientId("demo-client").clientSecret("demo-secret")
                        .tokenUrl(Servers.standin() + "/connect/token").fromEnv(prefix).build());
                Client c = client(s)) {
            assertEquals(Servers.standin(), s.origin());
            assertEquals(200, c.get(Servers.standin() + "/headers").status, "the token went to the origin");
            assertEquals(200, c.get(other.url + "/x").status);
            assertEquals("none", other.authorization.get(), "no token to another origin");
            assertEquals(1, Servers.tokenRequests());
        } finally {
            LibC.INSTANCE.unsetenv(prefix + "BASE_URL");
        }
    }

    @Test
    void a401FromAnotherOriginIsNotAboutOurToken() throws Exception {
        String before = session.token();
        assertEquals(new Result(401, "denied auth=none").toString(), client.get(main + "/to_other?to=always_401").toString());
        assertEquals(new Result(401, "denied auth=none").toString(), client.get(other + "/always_401").toString());
        // Back at the origin after leaving it: that hop carried no token, so its 401 is not ours either.
        assertEquals(new Result(401, "denied auth=none").toString(),
                client.get(main + "/to_other_and_back?to=always_401").toString());
        assertSame(before, session.token());
        assertEquals(1, session.stats().tokenRequests());
    }

    @Test
    void aSameOriginHopWhoseHeaderThePlatformStrippedIsNotOurs() throws Exception {
        String before = session.token();
        Result r = client.getStripping(main + "/to_same?to=always_401", "/always_401");
        assertEquals(new Result(401, "denied auth=none").toString(), r.toString());
        assertSame(before, session.token());
        assertEquals(1, session.stats().tokenRequests());
    }

    @Test
    void manyRequestsRejectedAtOnceCauseOneNewToken() throws Exception {
        Servers.reset();
        try (Session s = new Session(Servers.standinConfig().build()); Client c = client(s)) {
            String url = Servers.standin() + "/headers";
            assertEquals(200, c.get(url).status);
            Servers.revoke();
            List<Thread> threads = new ArrayList<>();
            AtomicReference<Throwable> failure = new AtomicReference<>();
            for (int i = 0; i < 20; i++) {
                Thread t = new Thread(() -> {
                    try {
                        assertEquals(200, c.get(url).status);
                    } catch (Throwable e) {
                        failure.compareAndSet(null, e);
                    }
                });
                t.start();
                threads.add(t);
            }
            for (Thread t : threads) {
                t.join(20_000);
            }
            assertNull(failure.get());
            assertEquals(2, Servers.tokenRequests(), "invalidate_token dropped the rejected token once");
            // The replayed POST body arrives whole, byte for byte.
            Servers.configure("{\"api_script\": [{\"status\": 401}]}");
            Result echoed = c.post(Servers.standin() + "/echo", "replay me", true);
            assertEquals("replay me", echoed.body);
            assertEquals(3, Servers.tokenRequests());
        }
    }

    @Test
    void theSessionMustHaveASafeBaseUrl() throws Exception {
        // No base_url: the library's default is the origin; a request elsewhere gets no token.
        try (Recorder other = new Recorder();
                Session none = new Session(Config.builder().clientId("a").clientSecret("b").tokenUrl(main + "/ok").build());
                Client c = client(none)) {
            assertEquals("https://api.aspose.cloud", none.origin());
            assertEquals(200, c.get(other.url + "/x").status);
            assertEquals("none", other.authorization.get());
            assertEquals(0, none.stats().tokenRequests());
        }
        try (Session insecure = new Session(Config.builder().clientId("a").clientSecret("b")
                .tokenUrl(main + "/ok").baseUrl("http://api.example.com").build())) {
            assertThrows(InsecureUrlException.class, () -> construct(insecure));
        }
    }

    /** libc's environment, which the library reads (cloudauth_config_from_env). */
    interface LibC extends com.sun.jna.Library {
        LibC INSTANCE = com.sun.jna.Native.load("c", LibC.class);

        int setenv(String name, String value, int overwrite);

        int unsetenv(String name);
    }

    /** A second server on 127.0.0.1: answers 200 and records the last Authorization header. */
    static final class Recorder implements AutoCloseable {
        final com.sun.net.httpserver.HttpServer server;
        final String url;
        final AtomicReference<String> authorization = new AtomicReference<>();

        Recorder() throws java.io.IOException {
            server = com.sun.net.httpserver.HttpServer.create(
                    new java.net.InetSocketAddress(java.net.InetAddress.getLoopbackAddress(), 0), 0);
            server.createContext("/", exchange -> {
                String auth = exchange.getRequestHeaders().getFirst("Authorization");
                authorization.set(auth == null ? "none" : auth);
                exchange.getRequestBody().readAllBytes();
                exchange.sendResponseHeaders(200, -1);
                exchange.close();
            });
            server.start();
            url = "http://127.0.0.1:" + server.getAddress().getPort();
        }

        @Override
        public void close() {
            server.stop(0);
        }
    }
}
