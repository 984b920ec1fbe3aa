package dev.cloudauth;

import static org.junit.jupiter.api.Assertions.*;

import java.time.Duration;
import java.util.Collections;
import java.util.HashMap;
import java.util.Map;
import java.util.concurrent.CompletionException;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/** Null, malformed and hostile input, and hostile servers: the matching exception with the library's message, never a crash. */
class BadInputTest {
    private static void assertOneCleanLine(String message, String... secrets) {
        assertNotNull(message);
        assertFalse(message.isEmpty());
        assertFalse(message.contains("\n") || message.contains("\r"), message);
        assertTrue(message.length() < 1000, message);
        for (String s : secrets) {
            assertFalse(message.contains(s), "message shows a secret: " + message);
        }
    }

    @Test
    void unknownKeysAndBadValuesNameTheKey() {
        InvalidArgumentException e = assertThrows(InvalidArgumentException.class,
                () -> Config.builder().set("no_such_key", "1").build());
        assertTrue(e.getMessage().contains("no_such_key"), e.getMessage());
        assertEquals(ResultCode.INVALID_ARGUMENT, e.code());
        e = assertThrows(InvalidArgumentException.class, () -> Config.builder().set("timeout_ms", "soon").build());
        assertTrue(e.getMessage().contains("timeout_ms"), e.getMessage());
        e = assertThrows(InvalidArgumentException.class, () -> Config.builder().maxRetries(-1).build());
        assertTrue(e.getMessage().contains("max_retries"), e.getMessage());
        e = assertThrows(InvalidArgumentException.class, () -> Config.builder().set("base_url", "not a url").build());
        assertOneCleanLine(e.getMessage());
    }

    @Test
    void nullsReachTheLibraryAndComeBackAsInvalidArgument() {
        assertThrows(InvalidArgumentException.class, () -> Config.builder().set(null, "x").build());
        assertThrows(InvalidArgumentException.class, () -> Config.builder().clientId(null).build());
        assertThrows(NullPointerException.class, () -> new Session(null));
        try (Session s = new Session(Servers.standinConfig().build())) {
            assertThrows(InvalidArgumentException.class, () -> s.request(null, "/headers"));
            assertThrows(InvalidArgumentException.class, () -> s.request("GET", null));
            assertThrows(InvalidArgumentException.class, () -> s.requestAsync("GET", null));
            assertThrows(InvalidArgumentException.class, () -> s.invalidate(null));
            Map<String, String> nullValue = new HashMap<>();
            nullValue.put("X-A", null);
            assertThrows(InvalidArgumentException.class, () -> s.request("GET", "/headers", nullValue, null));
            assertEquals(200, s.request("GET", "/headers", null, null).status());
        }
    }

    @Test
    void stringsCCannotCarryAreRefusedNotChanged() {
        InvalidArgumentException e = assertThrows(InvalidArgumentException.class,
                () -> Config.builder().clientSecret("sec\0ret").build());
        assertEquals("the value of client_secret contains a NUL character", e.getMessage());
        e = assertThrows(InvalidArgumentException.class, () -> Config.builder().clientId("a\uD800b").build());
        assertTrue(e.getMessage().contains("surrogate"), e.getMessage());
        try (Session s = new Session(Servers.standinConfig().build())) {
            assertThrows(InvalidArgumentException.class, () -> s.request("GET", "/headers\0x"));
            assertThrows(InvalidArgumentException.class,
                    () -> s.request("GET", "/headers", Collections.singletonMap("X-A", "a\r\nX-Evil: 1"), null));
            assertThrows(InvalidArgumentException.class,
                    () -> s.request("GET", "/headers", Collections.singletonMap("X:A", "b"), null));
            assertThrows(InvalidArgumentException.class,
                    () -> s.request("GET", "/headers", Collections.singletonMap("", "b"), null));
            InvalidArgumentException auth = assertThrows(InvalidArgumentException.class,
                    () -> s.request("GET", "/headers", Collections.singletonMap("Authorization", "Bearer mine"), null));
            assertOneCleanLine(auth.getMessage(), "mine");
            // Non-ASCII is fine where HTTP allows it: a URL path in UTF-8.
            assertEquals(200, s.request("GET", "/echo?q=caf\u00e9").status());
        }
    }

    @Test
    void insecureAndMissingCredentials() {
        InsecureUrlException e = assertThrows(InsecureUrlException.class, () -> new Session(Config.builder()
                .clientId("a").clientSecret("topsecret").tokenUrl("http://auth.example.com/token").build()));
        assertOneCleanLine(e.getMessage(), "topsecret");
        InvalidArgumentException missing = assertThrows(InvalidArgumentException.class,
                () -> new Session(Config.builder().tokenUrl("https://auth.example.com/token").build()));
        assertOneCleanLine(missing.getMessage());
    }

    @Test
    void networkTimeoutAndTooLarge() {
        int closed = Servers.freePort();
        try (Session s = new Session(Config.builder().clientId("a").clientSecret("b").maxRetries(0)
                .tokenUrl("http://127.0.0.1:" + closed + "/token").build())) {
            NetworkException e = assertThrows(NetworkException.class, s::token);
            assertOneCleanLine(e.getMessage(), "b\"");
        }
        Servers.reset();
        try (Session s = new Session(Servers.standinConfig().timeout(Duration.ofMillis(300)).build())) {
            s.token();
            CloudAuthTimeoutException e = assertThrows(CloudAuthTimeoutException.class, () -> s.request("GET", "/delay/3000"));
            assertOneCleanLine(e.getMessage(), s.token());
        }
        try (Session s = new Session(Servers.standinConfig().maxResponseBytes(1000).build())) {
            TooLargeException e = assertThrows(TooLargeException.class, () -> s.request("GET", "/big?bytes=5000"));
            assertOneCleanLine(e.getMessage(), s.token());
            CompletionException async = assertThrows(CompletionException.class,
                    () -> s.requestAsync("GET", "/big?bytes=5000").join());
            assertTrue(async.getCause() instanceof TooLargeException, String.valueOf(async.getCause()));
        }
    }

    @Test
    void hostileTokenEndpoints() throws Exception {
        String main = Servers.hostile()[0];
        Object[][] cases = {
            {"not_json", BadTokenResponseException.class},
            {"token_newline", BadTokenResponseException.class},
            {"type_mac", BadTokenResponseException.class},
            {"deep_json", BadTokenResponseException.class},
            {"garbage", NetworkException.class},
            {"reset", NetworkException.class},
            {"status_503", TokenEndpointException.class},
            {"status_400_invalid_client", AuthRejectedException.class},
            {"big_body", TooLargeException.class},
            {"hang", CloudAuthTimeoutException.class},
        };
        for (Object[] c : cases) {
            try (Session s = new Session(Servers.hostileConfig().tokenUrl(main + "/" + c[0])
                    .timeout(Duration.ofMillis(800)).clientSecret("hostile-secret").build())) {
                CloudAuthException e = assertThrows(CloudAuthException.class, s::token, (String) c[0]);
                assertEquals(c[1], e.getClass(), c[0] + ": " + e.getMessage());
                assertOneCleanLine(e.getMessage(), "hostile-secret");
                // The same through the async path, on the delivery thread.
                Throwable async = assertThrows(Exception.class, () -> s.tokenAsync().get(10, TimeUnit.SECONDS)).getCause();
                assertEquals(c[1], async.getClass(), c[0] + " async: " + async);
            }
        }
    }

    @Test
    void hostileApisKeepTheTokenOutOfMessages() {
        String main = Servers.hostile()[0];
        try (Session s = new Session(Servers.hostileConfig().build())) {
            String token = s.token();
            // A redirect to a plain-http remote host whose URL holds the token: refused, and the message does not quote it.
            CloudAuthException e = assertThrows(CloudAuthException.class, () -> s.request("GET", main + "/to_remote_http"));
            assertOneCleanLine(e.getMessage(), token);
            Response r = s.request("GET", main + "/bad_header_value");
            assertEquals(200, r.status());
            assertOneCleanLine(assertThrows(NetworkException.class, () -> s.request("GET", main + "/many_headers")).getMessage(), token);
            assertThrows(NetworkException.class, () -> s.request("GET", main + "/half_status"));
            Response echoed = s.request("GET", main + "/token_in_401");
            assertEquals(401, echoed.status());
            assertFalse(echoed.toString().contains(token));
        }
    }
}
