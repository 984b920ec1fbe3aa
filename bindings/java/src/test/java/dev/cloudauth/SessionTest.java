package dev.cloudauth;

import static org.junit.jupiter.api.Assertions.*;

import java.nio.charset.StandardCharsets;
import java.nio.file.Paths;
import java.time.Duration;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/** Every method of Session, Config, Response and Stats against the stand-in. */
class SessionTest {
    @BeforeEach
    void reset() {
        Servers.reset();
    }

    @Test
    void libraryComesFromTheJarResourcePath() {
        String path = CloudAuth.libraryPath();
        assertTrue(path.endsWith("linux-x86-64/libcloudauth.so"), path);
        assertTrue(Paths.get(path).startsWith(Paths.get("target/classes").toAbsolutePath()), path);
        assertTrue(CloudAuth.version().matches("\\d+\\.\\d+\\.\\d+.*"), CloudAuth.version());
    }

    @Test
    void tokenCallsUseFfmOnJdk22AndJnaBefore() {
        // tests/run/java.sh runs this class on JDK 17 and, where installed, on Temurin 25.
        String expected = Runtime.version().feature() >= 22 ? "ffm" : "jna";
        assertEquals(expected, CloudAuth.nativeAccess(), "on Java " + Runtime.version());
    }

    @Test
    void tokenIsFetchedOnceAndCached() {
        try (Session s = new Session(Servers.standinConfig().build())) {
            assertEquals(0, Servers.tokenRequests(), "session creation sends nothing");
            String t = s.token();
            assertTrue(t.length() > 20);
            for (int i = 0; i < 1000; i++) {
                assertSame(t, s.token(), "an unchanged token is the same String");
            }
            assertSame(t, s.tokenIfCached());
            assertEquals(1, Servers.tokenRequests());
            long left = s.tokenExpiresIn().getSeconds();
            assertTrue(left > 3500 && left <= 3600, "expires in " + left);
            Stats st = s.stats();
            assertEquals(1, st.tokenRequests());
            assertTrue(st.tokenExpiresInMs() > 3_500_000, st.toString());
        }
    }

    @Test
    void tokenIfCachedStartsAFetchAndReturnsNull() throws Exception {
        Servers.configure("{\"token_delay_ms\": 300}");
        try (Session s = new Session(Servers.standinConfig().build())) {
            assertNull(s.tokenIfCached());
            String t = null;
            for (int i = 0; i < 100 && t == null; i++) {
                Thread.sleep(20);
                t = s.tokenIfCached();
            }
            assertNotNull(t, "the fetch started by tokenIfCached landed");
            assertEquals(t, s.token());
            assertEquals(1, Servers.tokenRequests());
        }
    }

    @Test
    void invalidateDropsTheTokenAndInvalidateTokenOnlyTheCurrentOne() {
        try (Session s = new Session(Servers.standinConfig().build())) {
            String first = s.token();
            s.invalidate();
            String second = s.token();
            assertNotEquals(first, second);
            s.invalidate(first); // no longer current: kept
            assertSame(second, s.token());
            assertEquals(2, Servers.tokenRequests());
            s.invalidate(second);
            assertNotEquals(second, s.token());
            assertEquals(3, Servers.tokenRequests());
        }
    }

    @Test
    void requestCarriesHeadersAndBodyAndReturnsEveryStatus() {
        try (Session s = new Session(Servers.standinConfig().build())) {
            Map<String, String> headers = new LinkedHashMap<>();
            headers.put("X-Test", "yes");
            headers.put("Content-Type", "application/octet-stream");
            byte[] body = new byte[] {0, 1, 2, (byte) 0xff, 0};
            Response r = s.request("PUT", "/echo?a=1", headers, body);
            assertEquals(200, r.status());
            assertTrue(r.isSuccessful());
            assertArrayEquals(body, r.body());
            assertEquals("PUT", r.header("x-echo-method"));
            assertEquals("PUT", r.header("X-Echo-Method"));
            assertEquals("a=1", r.headers().get("x-echo-query").get(0));

            Response h = s.request("GET", Servers.standin() + "/headers", headers, null);
            assertTrue(h.bodyString().contains("\"x-test\": \"yes\""), h.bodyString());
            assertTrue(h.bodyString().contains("Bearer "));

            Response missing = s.request("GET", "/status/404");
            assertEquals(404, missing.status());
            assertFalse(missing.isSuccessful());
            assertEquals(500, s.request("GET", "/status/500").status());
            assertEquals("Response{status=404, headers=" + missing.headers().size() + ", body="
                    + missing.body().length + " bytes}", missing.toString());
            assertEquals(3 + 1, s.stats().apiRequests());
        }
    }

    @Test
    void a401IsAnsweredWithOneNewTokenAndOneResend() {
        List<Event> events = new CopyOnWriteArrayList<>();
        try (Session s = new Session(Servers.standinConfig().eventListener(events::add).build())) {
            String before = s.token();
            Servers.revoke();
            assertEquals(200, s.request("GET", "/headers").status());
            assertNotEquals(before, s.token());
            Stats st = s.stats();
            assertEquals(1, st.unauthorizedResends());
            assertEquals(2, st.apiRequests());
            assertEquals(2, st.tokenRequests());
            waitFor(() -> events.stream().anyMatch(e -> e.kind() == EventKind.UNAUTHORIZED));
        }
    }

    @Test
    void eventsReachTheListenerOnTheBindingsDeliveryThread() {
        List<String> threads = new CopyOnWriteArrayList<>();
        List<Event> events = new CopyOnWriteArrayList<>();
        Config config = Servers.standinConfig().eventListener(e -> {
            threads.add(Thread.currentThread().getName());
            events.add(e);
        }).build();
        try (Session s = new Session(config)) {
            s.token(); // a blocking call on this thread: its event still goes to the delivery thread
            waitFor(() -> !events.isEmpty());
            Event e = events.get(0);
            assertEquals(EventKind.TOKEN_FETCHED, e.kind());
            assertEquals("first_use", e.reason());
            assertEquals(ResultCode.OK, e.result());
            assertEquals(200, e.httpStatus());
            assertFalse(e.toString().contains(s.token()));
            s.tokenAsync().join();
            assertEquals(List.of("cloudauth-delivery"), threads.subList(0, 1));
            assertTrue(threads.stream().allMatch("cloudauth-delivery"::equals), threads.toString());
        }
        // A failed fetch: its event, with the failure's code.
        events.clear();
        Config bad = Servers.standinConfig().clientSecret("wrong").eventListener(events::add).build();
        try (Session s = new Session(bad)) {
            assertThrows(AuthRejectedException.class, s::token);
            waitFor(() -> events.stream().anyMatch(e -> e.kind() == EventKind.TOKEN_FETCH_FAILED));
            Event failed = events.stream().filter(e -> e.kind() == EventKind.TOKEN_FETCH_FAILED).findFirst().get();
            assertEquals(ResultCode.AUTH_REJECTED, failed.result());
            assertEquals(401, failed.httpStatus());
        }
    }

    @Test
    void aThrowingListenerLosesOnlyItsEvent() throws Exception {
        Config config = Servers.standinConfig().eventListener(e -> {
            throw new RuntimeException("listener bug");
        }).build();
        try (Session s = new Session(config)) {
            s.token();
            s.invalidate();
            assertEquals(200, s.requestAsync("GET", "/headers").get(10, TimeUnit.SECONDS).status());
        }
    }

    @Test
    void setCredentialsRotatesTheSecret() {
        try (Session s = new Session(Servers.standinConfig().clientSecret("wrong").build())) {
            AuthRejectedException e = assertThrows(AuthRejectedException.class, s::token);
            assertEquals(ResultCode.AUTH_REJECTED, e.code());
            assertFalse(e.getMessage().contains("wrong"), e.getMessage());
            s.setCredentials("demo-client", "demo-secret");
            assertFalse(s.token().isEmpty());
            assertThrows(InvalidArgumentException.class, () -> s.setCredentials("demo-client", ""));
            assertThrows(InvalidArgumentException.class, () -> s.setCredentials(null, "x"));
        }
    }

    @Test
    void checkUrlAppliesTheLibrarysRule() {
        try (Session s = new Session(Servers.standinConfig().build())) {
            s.checkUrl("https://api.example.com/x");
            s.checkUrl("http://127.0.0.1:9/x");
            assertThrows(InsecureUrlException.class, () -> s.checkUrl("http://api.example.com/x"));
            assertThrows(InvalidArgumentException.class, () -> s.checkUrl("ftp://127.0.0.1/x"));
            assertThrows(InvalidArgumentException.class, () -> s.checkUrl(null));
        }
    }

    @Test
    void configFromEnvAndTypedKeys() {
        // The environment of this JVM has no CLOUDAUTH_* keys: fromEnv keeps earlier keys as defaults.
        Config config = Servers.standinConfig().fromEnv().maxRetries(1).connectTimeout(Duration.ofSeconds(2))
                .refreshSkew(Duration.ofSeconds(30)).userAgent("java-test/1").scope("api").proxy("none")
                .maxResponseBytes(1 << 20).allowInsecureHttp(false).authMethod(AuthMethod.CLIENT_SECRET_BASIC)
                .set("refresh_mode", "inline").build();
        try (Session s = new Session(config)) {
            assertFalse(s.token().isEmpty());
            String log = Servers.stats();
            assertTrue(log.contains("\"user-agent\": \"java-test/1\""), log);
            assertTrue(log.contains("\"basic\": {\"client_id\": \"demo-client\""), log);
        }
        String text = config.toString();
        assertTrue(text.contains("client_secret") && !text.contains("demo-secret"), text);
        assertTrue(text.contains("fromEnv(CLOUDAUTH_)"), text);
        Session fromEnvOnly = null;
        try {
            fromEnvOnly = Session.fromEnv();
            fail("no credentials in the environment, yet a session");
        } catch (InvalidArgumentException e) {
            assertTrue(e.getMessage().contains("client_id"), e.getMessage());
        } finally {
            if (fromEnvOnly != null) {
                fromEnvOnly.close();
            }
        }
    }

    @Test
    void fromEnvReadsPrefixedVariables() {
        // Surefire sets CAJTEST_CLIENT_ID, _CLIENT_SECRET, _BASE_URL (pom.xml); keys set after
        // fromEnv override it, keys before it are defaults.
        Config config = Config.builder().clientId("overridden-by-env").fromEnv("CAJTEST_")
                .tokenUrl(Servers.standin() + "/connect/token").build();
        try (Session s = new Session(config)) {
            assertFalse(s.token().isEmpty());
            assertEquals("https://api.example.test", s.baseUrl());
            assertTrue(Servers.stats().contains("\"client_id\": \"demo-client\""));
        }
        InvalidArgumentException e = assertThrows(InvalidArgumentException.class,
                () -> Config.builder().fromEnv("CAJTBAD_").build());
        assertTrue(e.getMessage().contains("CAJTBAD_TIMEOUT_MS"), e.getMessage());
    }

    @Test
    void toStringsNeverShowTheTokenOrSecret() throws Exception {
        try (Session s = new Session(Servers.standinConfig().build())) {
            String t = s.token();
            Response r = s.request("GET", "/headers"); // its body holds the token
            assertTrue(r.bodyString().contains(t));
            for (Object o : new Object[] {s, r, s.stats(), Servers.standinConfig().build()}) {
                assertFalse(o.toString().contains(t), o.getClass() + ": " + o);
                assertFalse(o.toString().contains("demo-secret"), o.getClass() + ": " + o);
            }
            assertFalse(s.tokenAsync().toString().contains(t));
        }
    }

    @Test
    void closedSessionThrowsIllegalStateException() {
        Session s = new Session(Servers.standinConfig().build());
        s.token();
        s.close();
        s.close(); // idempotent
        assertTrue(s.isClosed());
        assertTrue(s.toString().contains("closed"));
        for (Runnable call : new Runnable[] {s::token, s::tokenIfCached, s::invalidate, () -> s.invalidate("x"), s::stats,
                s::tokenExpiresIn, () -> s.request("GET", "/headers"), () -> s.requestAsync("GET", "/headers"),
                s::tokenAsync, () -> s.checkUrl("http://127.0.0.1/"), () -> s.setCredentials("a", "b")}) {
            IllegalStateException e = assertThrows(IllegalStateException.class, call::run);
            assertEquals("the cloudauth session is closed", e.getMessage());
        }
    }

    static void waitFor(java.util.function.BooleanSupplier condition) {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
        while (!condition.getAsBoolean()) {
            if (System.nanoTime() > deadline) {
                fail("condition not met within 10 s");
            }
            try {
                Thread.sleep(10);
            } catch (InterruptedException e) {
                throw new AssertionError(e);
            }
        }
    }

    static byte[] utf8(String s) {
        return s.getBytes(StandardCharsets.UTF_8);
    }
}
