package org.cloudauth;

import static org.junit.jupiter.api.Assertions.*;

import org.junit.jupiter.api.Test;

class SmokeTest {
    @Test
    void tokenAndRequest() throws Exception {
        try (Session s = new Session(Servers.standinConfig().build())) {
            String t = s.token();
            assertFalse(t.isEmpty());
            assertSame(t, s.token());
            Response r = s.request("GET", "/headers");
            assertEquals(200, r.status(), r.bodyString());
            assertEquals(200, s.requestAsync("GET", "/headers").get().status());
            assertEquals(t, s.tokenAsync().get());
        }
    }
}
