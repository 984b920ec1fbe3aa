package dev.cloudauth;

import static org.junit.jupiter.api.Assertions.*;

import java.lang.ref.WeakReference;
import java.nio.file.Files;
import java.nio.file.Paths;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CancellationException;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/** Many threads, many operations in flight, cancellation, close under load, memory over a million calls. */
class ConcurrencyTest {
    @BeforeEach
    void reset() {
        Servers.reset();
    }

    @Test
    void twoHundredThreadsOnOneSessionCauseOneTokenRequest() throws Exception {
        Servers.configure("{\"token_delay_ms\": 300}"); // every thread arrives while the fetch is in flight
        try (Session s = new Session(Servers.standinConfig().build())) {
            int n = 200;
            CountDownLatch go = new CountDownLatch(1);
            List<Thread> threads = new ArrayList<>();
            List<String> tokens = java.util.Collections.synchronizedList(new ArrayList<>());
            AtomicReference<Throwable> failure = new AtomicReference<>();
            for (int i = 0; i < n; i++) {
                Thread t = new Thread(() -> {
                    try {
                        go.await();
                        tokens.add(s.token());
                        assertEquals(200, s.request("GET", "/headers").status());
                    } catch (Throwable e) {
                        failure.compareAndSet(null, e);
                    }
                });
                t.start();
                threads.add(t);
            }
            go.countDown();
            for (Thread t : threads) {
                t.join(30_000);
            }
            assertNull(failure.get());
            assertEquals(n, tokens.size());
            assertEquals(1, tokens.stream().distinct().count());
            assertEquals(1, Servers.tokenRequests(), "the stand-in saw one token request");
            assertEquals(n, Servers.apiRequests());
            assertEquals(1, s.stats().tokenRequests());
        }
    }

    @Test
    void aThousandAsyncOperationsInFlight() throws Exception {
        String nginx = Servers.nginx();
        try (Session s = new Session(Config.builder().clientId("a").clientSecret("b").tokenUrl(nginx + "/connect/token")
                .baseUrl(nginx).build())) {
            int n = 1000;
            List<CompletableFuture<Response>> futures = new ArrayList<>(n);
            for (int i = 0; i < n; i++) {
                futures.add(s.requestAsync("GET", "/api/ping"));
            }
            futures.add(s.requestAsync("GET", "/redirect-to-api")); // a same-origin redirect keeps the token
            CompletableFuture.allOf(futures.toArray(new CompletableFuture<?>[0])).get(60, TimeUnit.SECONDS);
            for (CompletableFuture<Response> f : futures) {
                assertEquals(200, f.join().status());
                assertEquals("{\"ok\":true}\n", f.join().bodyString());
            }
            assertEquals(1, s.stats().tokenRequests());
            assertEquals(0, Delivery.pendingCount());
            List<CompletableFuture<String>> tokens = new ArrayList<>();
            for (int i = 0; i < 200; i++) {
                tokens.add(s.tokenAsync());
            }
            for (CompletableFuture<String> t : tokens) {
                assertEquals(Servers.NGINX_TOKEN, t.get(10, TimeUnit.SECONDS));
            }
        }
    }

    @Test
    void cancelEndsTheOperationAtOnce() throws Exception {
        try (Session s = new Session(Servers.standinConfig().build())) {
            s.token();
            CompletableFuture<Response> slow = s.requestAsync("GET", "/delay/5000");
            CompletableFuture<String> dependent = slow.thenApply(Response::bodyString);
            Thread.sleep(100);
            long t0 = System.nanoTime();
            assertTrue(slow.cancel(true));
            assertTrue(slow.isCancelled());
            assertThrows(CancellationException.class, slow::join);
            ExecutionException e = assertThrows(ExecutionException.class, () -> dependent.get(2, TimeUnit.SECONDS));
            assertTrue(e.getCause() instanceof CancellationException);
            // The native operation ends too: its completion is taken within a moment.
            SessionTest.waitFor(() -> Delivery.pendingCount() == 0);
            assertTrue(System.nanoTime() - t0 < TimeUnit.SECONDS.toNanos(3));
            slow.cancel(true); // a second cancel is harmless
            assertTrue(slow.isCancelled());
            // A finished operation cannot be cancelled.
            CompletableFuture<Response> done = s.requestAsync("GET", "/headers");
            assertEquals(200, done.get(10, TimeUnit.SECONDS).status());
            assertFalse(done.cancel(true));
        }
        // A token fetch in flight, cancelled.
        Servers.configure("{\"token_delay_ms\": 3000}");
        try (Session s = new Session(Servers.standinConfig().build())) {
            CompletableFuture<String> token = s.tokenAsync();
            Thread.sleep(100);
            assertTrue(token.cancel(true));
            assertThrows(CancellationException.class, token::join);
            SessionTest.waitFor(() -> Delivery.pendingCount() == 0);
        }
    }

    @Test
    void closeWhileCallsAreInFlight() throws Exception {
        Session s = new Session(Servers.standinConfig().build());
        s.token();
        int blocking = 8;
        CountDownLatch started = new CountDownLatch(blocking);
        List<Thread> threads = new ArrayList<>();
        AtomicInteger ok = new AtomicInteger();
        AtomicReference<Throwable> failure = new AtomicReference<>();
        for (int i = 0; i < blocking; i++) {
            Thread t = new Thread(() -> {
                try {
                    started.countDown();
                    Response r = s.request("GET", "/delay/700"); // in flight when close() runs
                    if (r.status() == 200) {
                        ok.incrementAndGet();
                    }
                } catch (Throwable e) {
                    failure.compareAndSet(null, e);
                }
            });
            t.start();
            threads.add(t);
        }
        List<CompletableFuture<Response>> async = new ArrayList<>();
        for (int i = 0; i < 50; i++) {
            async.add(s.requestAsync("GET", "/delay/2000"));
        }
        // Threads hammering the cached token while the session closes under them.
        AtomicInteger closedSeen = new AtomicInteger();
        List<Thread> hammers = new ArrayList<>();
        for (int i = 0; i < 4; i++) {
            Thread t = new Thread(() -> {
                try {
                    while (true) {
                        s.token();
                        s.stats();
                    }
                } catch (IllegalStateException e) {
                    closedSeen.incrementAndGet();
                } catch (Throwable e) {
                    failure.compareAndSet(null, e);
                }
            });
            t.start();
            hammers.add(t);
        }
        started.await();
        Thread.sleep(200);
        s.close();
        assertThrows(IllegalStateException.class, s::token);
        for (Thread t : threads) {
            t.join(10_000);
        }
        for (Thread t : hammers) {
            t.join(10_000);
        }
        assertNull(failure.get(), String.valueOf(failure.get()));
        assertEquals(blocking, ok.get(), "blocking calls in flight finish normally");
        assertEquals(4, closedSeen.get());
        for (CompletableFuture<Response> f : async) {
            ExecutionException e = assertThrows(ExecutionException.class, () -> f.get(10, TimeUnit.SECONDS));
            assertTrue(e.getCause() instanceof CancelledException, String.valueOf(e.getCause()));
        }
        assertEquals(0, Delivery.pendingCount());
    }

    @Test
    void aMillionCachedTokenCallsDoNotGrowHeapOrRss() {
        try (Session s = new Session(Servers.standinConfig().build())) {
            String t = s.token();
            for (int i = 0; i < 100_000; i++) { // warm up: JIT, thread-local scratch
                s.token();
            }
            long heap0 = usedHeapAfterGc();
            long rss0 = rssKb();
            for (int i = 0; i < 1_000_000; i++) {
                if (s.token() != t) {
                    fail("the cached token changed at call " + i);
                }
            }
            long heap1 = usedHeapAfterGc();
            long rss1 = rssKb();
            assertTrue(heap1 - heap0 < 2 << 20, "heap grew " + (heap1 - heap0) + " bytes");
            assertTrue(rss1 - rss0 < 16 << 10, "RSS grew " + (rss1 - rss0) + " KiB");
            assertEquals(1, s.stats().tokenRequests());
        }
    }

    @Test
    void anUnclosedSessionIsFreedByTheCleaner() throws Exception {
        Config config = Servers.standinConfig().eventListener(e -> { }).build();
        Session s = new Session(config);
        s.token();
        WeakReference<Session> ref = new WeakReference<>(s);
        s = null;
        for (int i = 0; i < 100 && ref.get() != null; i++) {
            System.gc();
            Thread.sleep(20);
        }
        assertNull(ref.get(), "the session was not collected");
        // The Cleaner's action freed it and dropped its listener.
        SessionTest.waitFor(() -> Delivery.listenerCount() == 0);
    }

    private static long usedHeapAfterGc() {
        Runtime rt = Runtime.getRuntime();
        for (int i = 0; i < 3; i++) {
            System.gc();
        }
        return rt.totalMemory() - rt.freeMemory();
    }

    private static long rssKb() {
        try {
            for (String line : Files.readAllLines(Paths.get("/proc/self/status"))) {
                if (line.startsWith("VmRSS:")) {
                    return Long.parseLong(line.replaceAll("[^0-9]", ""));
                }
            }
        } catch (java.io.IOException e) {
            throw new AssertionError(e);
        }
        throw new AssertionError("no VmRSS in /proc/self/status");
    }
}
