package dev.cloudauth;

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
