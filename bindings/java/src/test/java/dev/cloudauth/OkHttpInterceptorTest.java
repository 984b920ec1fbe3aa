package dev.cloudauth;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.util.concurrent.TimeUnit;
import okhttp3.MediaType;
import okhttp3.OkHttpClient;
import okhttp3.Request;
import okhttp3.RequestBody;
import okhttp3.Response;
import okio.BufferedSink;
import dev.cloudauth.CloudAuthInterceptor;
import org.junit.jupiter.api.Test;

/** The adapters' rule through OkHttp (okhttp3 4.x; the okhttp5 profile runs it on 5.x). */
class OkHttpInterceptorTest extends AdapterContract {
    private static final MediaType TEXT = MediaType.parse("text/plain");

    @Test
    void runsOnTheExpectedOkHttp() throws Exception {
        String major = System.getProperty("cloudauth.okhttp.major", "4");
        // Read at run time: the constant itself is inlined at compile time.
        String version = (String) okhttp3.OkHttp.class.getField("VERSION").get(null);
        assertTrue(version.startsWith(major + "."), version);
    }

    @Test
    void aTokenFailureIsAnIOExceptionWithTheLibrarysError() throws Exception {
        try (Session bad = new Session(Servers.hostileConfig().tokenUrl(main + "/status_401_invalid_client").build())) {
            OkHttpClient http = CloudAuthInterceptor.install(new OkHttpClient.Builder(), bad).build();
            java.io.IOException e = org.junit.jupiter.api.Assertions.assertThrows(java.io.IOException.class,
                    () -> http.newCall(new Request.Builder().url(main + "/echo").build()).execute());
            assertTrue(e.getCause() instanceof AuthRejectedException, String.valueOf(e.getCause()));
            // Asynchronously: onFailure, not an exception on a dispatcher thread.
            java.util.concurrent.CompletableFuture<java.io.IOException> failure = new java.util.concurrent.CompletableFuture<>();
            http.newCall(new Request.Builder().url(main + "/echo").build()).enqueue(new okhttp3.Callback() {
                @Override
                public void onFailure(okhttp3.Call call, java.io.IOException ex) {
                    failure.complete(ex);
                }

                @Override
                public void onResponse(okhttp3.Call call, Response response) {
                    response.close();
                    failure.completeExceptionally(new AssertionError("a response without a token"));
                }
            });
            assertTrue(failure.get(10, TimeUnit.SECONDS).getCause() instanceof AuthRejectedException);
        }
    }

    /**
     * The interceptor only adds a header and lets OkHttp send: a one-shot body OkHttp writes as
     * it goes (chunked) and a response body read as it arrives stream natively, in bounded
     * memory, through the adapter.
     */
    @Test
    void largeBodiesStreamThroughTheInterceptor() throws Exception {
        long up = 32L << 20;
        long down = 64L << 20;
        Servers.reset();
        try (Session s = new Session(Servers.standinConfig().build())) {
            OkHttpClient http = CloudAuthInterceptor.install(new OkHttpClient.Builder(), s)
                    .callTimeout(30, TimeUnit.SECONDS).build();
            long base = StreamTest.heapUsed();
            long[] grew = {Long.MIN_VALUE, Long.MIN_VALUE};
            RequestBody generated = new RequestBody() {
                @Override
                public MediaType contentType() {
                    return MediaType.parse("application/octet-stream");
                }

                @Override
                public void writeTo(BufferedSink sink) throws IOException {
                    byte[] piece = new byte[64 << 10];
                    java.util.Arrays.fill(piece, (byte) 'u');
                    for (long sent = 0; sent < up; sent += piece.length) {
                        if (sent == up / 2) {
                            grew[0] = StreamTest.heapUsed() - base;
                        }
                        sink.write(piece);
                    }
                }

                @Override
                public boolean isOneShot() {
                    return true;
                }
            };
            try (Response r = http.newCall(new Request.Builder().url(Servers.standin() + "/echo?okhttp=up").post(generated).build())
                    .execute()) {
                assertEquals(200, r.code());
                assertEquals(up, count(r.body().byteStream(), (byte) 'u', up, grew, 1, base));
            }
            String h = StreamTest.loggedHeaders("okhttp=up");
            assertTrue(h.contains("\"transfer-encoding\": \"chunked\"") && h.contains("Bearer "), h);
            assertTrue(grew[0] != Long.MIN_VALUE && grew[0] < 8 << 20, "heap grew by " + grew[0] + " halfway through the upload");
            assertTrue(grew[1] != Long.MIN_VALUE && grew[1] < 8 << 20, "heap grew by " + grew[1] + " halfway through the echo");

            grew[1] = Long.MIN_VALUE;
            try (Response r = http.newCall(new Request.Builder().url(Servers.standin() + "/big?bytes=" + down).build()).execute()) {
                assertEquals(200, r.code());
                assertEquals(down, count(r.body().byteStream(), (byte) 'a', down, grew, 1, base));
            }
            assertTrue(grew[1] != Long.MIN_VALUE && grew[1] < 8 << 20, "heap grew by " + grew[1] + " halfway through the download");
            assertEquals(1, Servers.tokenRequests());
            http.connectionPool().evictAll();
        }
    }

    /** Reads {@code in} to its end checking every byte is {@code b}; the heap growth halfway goes to grew[slot]. */
    static long count(java.io.InputStream in, byte b, long size, long[] grew, int slot, long base) throws IOException {
        byte[] buf = new byte[100_000];
        long total = 0;
        for (int n; (n = in.read(buf)) > 0; ) {
            for (int i = 0; i < n; i++) {
                if (buf[i] != b) {
                    throw new AssertionError("byte " + (total + i) + " is " + buf[i]);
                }
            }
            if (total < size / 2 && total + n >= size / 2) {
                grew[slot] = StreamTest.heapUsed() - base;
            }
            total += n;
        }
        return total;
    }

    @Override
    void construct(Session session) {
        new CloudAuthInterceptor(session);
    }

    @Override
    Client client(Session session) {
        OkHttpClient http = CloudAuthInterceptor.install(new OkHttpClient.Builder(), session)
                .callTimeout(20, TimeUnit.SECONDS).build();
        return new Client() {
            @Override
            public Result get(String url) throws IOException {
                return call(http, new Request.Builder().url(url).build());
            }

            @Override
            public Result post(String url, String body, boolean replayable) throws IOException {
                RequestBody b = replayable ? RequestBody.create(body, TEXT) : oneShot(body);
                return call(http, new Request.Builder().url(url).post(b).build());
            }

            @Override
            public Result getStripping(String url, String path) throws IOException {
                OkHttpClient stripping = http.newBuilder().addNetworkInterceptor(chain -> {
                    Request hop = chain.request();
                    if (hop.url().encodedPath().equals(path)) {
                        hop = hop.newBuilder().removeHeader("Authorization").build();
                    }
                    return chain.proceed(hop);
                }).build();
                return call(stripping, new Request.Builder().url(url).build());
            }

            @Override
            public void close() {
                http.dispatcher().executorService().shutdown();
                http.connectionPool().evictAll();
            }
        };
    }

    private static Result call(OkHttpClient http, Request request) throws IOException {
        try (Response r = http.newCall(request).execute()) {
            return new Result(r.code(), r.body().string());
        }
    }

    private static RequestBody oneShot(String body) {
        return new RequestBody() {
            @Override
            public MediaType contentType() {
                return TEXT;
            }

            @Override
            public void writeTo(BufferedSink sink) throws IOException {
                sink.writeUtf8(body);
            }

            @Override
            public boolean isOneShot() {
                return true;
            }
        };
    }
}
