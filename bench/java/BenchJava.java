// Java benchmarks for bench/run.sh: prints "R java.* <value>" lines for bench/report.py.
//
//   java -cp <cloudauth jar>:<jna, okhttp, okio, kotlin-stdlib> bench/java/BenchJava.java
//
// Environment: BENCH_BASE (the private nginx of bench/lib.sh: /connect/token and a Bearer-checked
// /api/ping), BENCH_TOKEN (the token nginx issues and wants), BENCH_QUICK=1 for a smoke run.
// Every figure is the median of interleaved rounds in this one process (after a warm-up, so the
// JIT has compiled each client's path):
//   1. sequential GETs on loopback nginx: Session.request vs java.net.http.HttpClient and OkHttp,
//      each sending a fixed Authorization header the best way its users would (one client,
//      keep-alive, HTTP/1.1, bytes not strings), req/s; every status and body checked;
//   2. the OkHttp interceptor's cost: CloudAuthInterceptor vs an interceptor that sets a fixed
//      header, each in front of an interceptor that answers at once (no network), µs/request
//      (median of per-round differences);
//   3. Session.token() on a cached token, ns/call, beside a plain field read (JNA; with
//      BENCH_JAVA_PARTS=token on JDK 22+, the FFM path);
//   4. streamed bodies, MiB/s: a download of /api/blob to a discarding sink (Session.download
//      through JNA write callbacks vs HttpClient BodyHandlers.ofInputStream and OkHttp
//      byteStream, each read in 64 KiB pieces) and an upload of the same size from a one-shot
//      InputStream (Session.upload through JNA read callbacks vs BodyPublishers.ofInputStream
//      and an OkHttp one-shot RequestBody copying the stream).
// BENCH_JAVA_PARTS picks parts (default seq,canned,token,bodies).
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.function.LongSupplier;
import okhttp3.Interceptor;
import okhttp3.MediaType;
import okhttp3.OkHttpClient;
import okhttp3.Protocol;
import okhttp3.Request;
import okhttp3.ResponseBody;
import dev.cloudauth.Config;
import dev.cloudauth.Response;
import dev.cloudauth.Session;
import dev.cloudauth.CloudAuthInterceptor;

public class BenchJava {
    static final boolean QUICK = "1".equals(System.getenv("BENCH_QUICK"));
    static final String OK_BODY = "{\"ok\":true}\n";
    static volatile Object sink;
    static String field = "a plain field";

    public static void main(String[] args) throws Exception {
        String base = System.getenv("BENCH_BASE");
        String token = System.getenv("BENCH_TOKEN");
        if (base == null || token == null) {
            throw new IllegalStateException("set BENCH_BASE and BENCH_TOKEN (bench/run.sh does)");
        }
        int rounds = QUICK ? 3 : 7;
        Config config = Config.builder().clientId("bench-client").clientSecret("bench-secret")
                .tokenUrl(base + "/connect/token").baseUrl(base).build();
        try (Session session = new Session(config)) {
            if (!session.token().equals(token)) {
                throw new IllegalStateException("nginx issued another token than BENCH_TOKEN");
            }
            String parts = System.getenv().getOrDefault("BENCH_JAVA_PARTS", "seq,canned,token,bodies");
            if (parts.contains("seq")) {
                seq(session, base, token, rounds);
            }
            if (parts.contains("canned")) {
                canned(session, rounds);
            }
            if (parts.contains("token")) {
                tokenCalls(session, rounds);
            }
            if (parts.contains("bodies")) {
                bodies(session, base, token, rounds);
            }
        }
    }

    // ---- 1. sequential GETs ------------------------------------------------------------------

    static void seq(Session session, String base, String token, int rounds) throws Exception {
        int n = QUICK ? 500 : 4000;
        String url = base + "/api/ping";
        String bearer = "Bearer " + token;

        HttpClient jdk = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1).build();
        HttpRequest jdkRequest = HttpRequest.newBuilder(URI.create(url)).header("Authorization", bearer).build();
        OkHttpClient ok = new OkHttpClient();
        Request okRequest = new Request.Builder().url(url).header("Authorization", bearer).build();

        LongSupplier viaSession = () -> {
            Response r = session.request("GET", "/api/ping");
            check(r.status(), r.body().length == 12 && r.bodyString().equals(OK_BODY));
            return 0;
        };
        LongSupplier viaJdk = () -> {
            try {
                HttpResponse<byte[]> r = jdk.send(jdkRequest, HttpResponse.BodyHandlers.ofByteArray());
                check(r.statusCode(), new String(r.body(), java.nio.charset.StandardCharsets.UTF_8).equals(OK_BODY));
                return 0;
            } catch (Exception e) {
                throw new RuntimeException(e);
            }
        };
        LongSupplier viaOk = () -> {
            try (okhttp3.Response r = ok.newCall(okRequest).execute()) {
                check(r.code(), r.body().string().equals(OK_BODY));
                return 0;
            } catch (java.io.IOException e) {
                throw new RuntimeException(e);
            }
        };
        String[] names = {"session", "httpclient", "okhttp"};
        LongSupplier[] calls = {viaSession, viaJdk, viaOk};
        for (LongSupplier c : calls) { // warm-up: JIT, connections
            for (int i = 0; i < n; i++) {
                c.getAsLong();
            }
        }
        List<List<Double>> perS = new ArrayList<>();
        for (int k = 0; k < calls.length; k++) {
            perS.add(new ArrayList<>());
        }
        for (int round = 0; round < rounds; round++) {
            for (int k = 0; k < calls.length; k++) {
                long t0 = System.nanoTime();
                for (int i = 0; i < n; i++) {
                    calls[k].getAsLong();
                }
                perS.get(k).add(n / ((System.nanoTime() - t0) / 1e9));
            }
        }
        for (int k = 0; k < calls.length; k++) {
            report("java.seq." + names[k] + ".per_s", perS.get(k));
        }
        System.out.println("R java.seq.requests " + n);
        ok.dispatcher().executorService().shutdown();
        ok.connectionPool().evictAll();
    }

    static void check(int status, boolean bodyOk) {
        if (status != 200 || !bodyOk) {
            throw new IllegalStateException("unexpected answer: status " + status);
        }
    }

    // ---- 2. the interceptor's own cost -------------------------------------------------------

    static void canned(Session session, int rounds) throws Exception {
        int n = QUICK ? 20_000 : 200_000;
        MediaType json = MediaType.parse("application/json");
        Interceptor answer = chain -> new okhttp3.Response.Builder().request(chain.request()).protocol(Protocol.HTTP_1_1)
                .code(200).message("OK").body(ResponseBody.create(OK_BODY, json)).build();
        String fixed = "Bearer " + session.token();
        Interceptor fixedHeader = chain -> chain.proceed(chain.request().newBuilder().header("Authorization", fixed).build());
        OkHttpClient withCloudAuth = new OkHttpClient.Builder().addInterceptor(new CloudAuthInterceptor(session))
                .addInterceptor(answer).build();
        OkHttpClient withFixed = new OkHttpClient.Builder().addInterceptor(fixedHeader).addInterceptor(answer).build();
        Request request = new Request.Builder().url(session.baseUrl() + "/api/ping").build();
        OkHttpClient[] clients = {withCloudAuth, withFixed};
        for (OkHttpClient c : clients) {
            for (int i = 0; i < n; i++) {
                cannedCall(c, request);
            }
        }
        List<Double> cloud = new ArrayList<>();
        List<Double> plain = new ArrayList<>();
        List<Double> diff = new ArrayList<>();
        for (int round = 0; round < rounds; round++) {
            double[] us = new double[2];
            for (int k = 0; k < 2; k++) {
                long t0 = System.nanoTime();
                for (int i = 0; i < n; i++) {
                    cannedCall(clients[k], request);
                }
                us[k] = (System.nanoTime() - t0) / 1e3 / n;
            }
            cloud.add(us[0]);
            plain.add(us[1]);
            diff.add(us[0] - us[1]);
        }
        report("java.okhttp.canned.interceptor.us_per_req", cloud);
        report("java.okhttp.canned.fixed.us_per_req", plain);
        report("java.okhttp.canned.overhead_us", diff);
    }

    static void cannedCall(OkHttpClient client, Request request) throws java.io.IOException {
        try (okhttp3.Response r = client.newCall(request).execute()) {
            if (r.code() != 200 || r.request().header("Authorization") == null) {
                throw new IllegalStateException("the canned answer lacks the token");
            }
            sink = r;
        }
    }

    // ---- 3. the cached token -----------------------------------------------------------------

    static void tokenCalls(Session session, int rounds) {
        int n = QUICK ? 200_000 : 2_000_000;
        for (int i = 0; i < n; i++) {
            sink = session.token();
            sink = field;
        }
        List<Double> token = new ArrayList<>();
        List<Double> read = new ArrayList<>();
        for (int round = 0; round < rounds; round++) {
            long t0 = System.nanoTime();
            for (int i = 0; i < n; i++) {
                sink = session.token();
            }
            token.add((System.nanoTime() - t0) / (double) n);
            t0 = System.nanoTime();
            for (int i = 0; i < n; i++) {
                sink = field;
            }
            read.add((System.nanoTime() - t0) / (double) n);
        }
        // The token calls go through JNA, or FFM on JDK 22+ (bench/java/run.sh runs this part
        // once more on such a JDK when one is installed).
        String mode = dev.cloudauth.CloudAuth.nativeAccess();
        report("java.token" + (mode.equals("jna") ? "" : "." + mode) + ".ns_per_call", token);
        report("java.field" + (mode.equals("jna") ? "" : "." + mode) + ".ns_per_read", read);
    }

    // ---- 4. streamed bodies ------------------------------------------------------------------

    interface Call {
        void run() throws Exception;
    }

    static void bodies(Session session, String base, String token, int rounds) throws Exception {
        int mib = Integer.parseInt(System.getenv().getOrDefault("BENCH_BLOB_MIB", "16"));
        long size = (long) mib << 20;
        byte[] payload = new byte[(int) size];
        new java.util.Random(1).nextBytes(payload);
        String bearer = "Bearer " + token;
        URI blob = URI.create(base + "/api/blob");
        URI upload = URI.create(base + "/api/upload");
        HttpClient jdk = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1).build();
        OkHttpClient ok = new OkHttpClient();
        MediaType octets = MediaType.parse("application/octet-stream");
        java.util.Map<String, String> ct = java.util.Map.of("Content-Type", "application/octet-stream");
        byte[] buf = new byte[64 << 10];
        long[] got = {0};
        java.io.OutputStream discard = new java.io.OutputStream() {
            @Override
            public void write(int b) {
                got[0]++;
            }

            @Override
            public void write(byte[] b, int off, int len) {
                got[0] += len;
            }
        };
        Call downSession = () -> {
            got[0] = 0;
            Response r = session.download("GET", blob.toString(), discard);
            checkSize(r.status(), got[0], size);
        };
        Call downJdk = () -> {
            HttpResponse<java.io.InputStream> r = jdk.send(HttpRequest.newBuilder(blob).header("Authorization", bearer).build(),
                    HttpResponse.BodyHandlers.ofInputStream());
            checkSize(r.statusCode(), drain(r.body(), buf), size);
        };
        Call downOk = () -> {
            try (okhttp3.Response r = ok.newCall(new Request.Builder().url(blob.toString()).header("Authorization", bearer).build())
                    .execute()) {
                checkSize(r.code(), drain(r.body().byteStream(), buf), size);
            }
        };
        Call upSession = () -> {
            Response r = session.upload("POST", upload.toString(), ct,
                    dev.cloudauth.BodySource.of(new java.io.ByteArrayInputStream(payload), size));
            check(r.status(), true);
        };
        Call upJdk = () -> {
            HttpResponse<Void> r = jdk.send(HttpRequest.newBuilder(upload).header("Authorization", bearer)
                    .header("Content-Type", "application/octet-stream")
                    .POST(HttpRequest.BodyPublishers.fromPublisher(
                            HttpRequest.BodyPublishers.ofInputStream(() -> new java.io.ByteArrayInputStream(payload)), size))
                    .build(), HttpResponse.BodyHandlers.discarding());
            check(r.statusCode(), true);
        };
        Call upOk = () -> {
            java.io.InputStream in = new java.io.ByteArrayInputStream(payload);
            okhttp3.RequestBody body = new okhttp3.RequestBody() {
                @Override
                public MediaType contentType() {
                    return octets;
                }

                @Override
                public long contentLength() {
                    return size;
                }

                @Override
                public void writeTo(okio.BufferedSink sink) throws java.io.IOException {
                    sink.writeAll(okio.Okio.source(in));
                }

                @Override
                public boolean isOneShot() {
                    return true;
                }
            };
            try (okhttp3.Response r = ok.newCall(new Request.Builder().url(upload.toString()).header("Authorization", bearer)
                    .post(body).build()).execute()) {
                check(r.code(), true);
            }
        };
        String[] names = {"down.session", "down.httpclient", "down.okhttp", "up.session", "up.httpclient", "up.okhttp"};
        Call[] calls = {downSession, downJdk, downOk, upSession, upJdk, upOk};
        int n = QUICK ? 2 : 8;
        for (Call c : calls) { // warm-up: JIT, connections
            for (int i = 0; i < n; i++) {
                c.run();
            }
        }
        List<List<Double>> mibPerS = new ArrayList<>();
        for (int k = 0; k < calls.length; k++) {
            mibPerS.add(new ArrayList<>());
        }
        for (int round = 0; round < rounds; round++) {
            for (int k = 0; k < calls.length; k++) {
                long t0 = System.nanoTime();
                for (int i = 0; i < n; i++) {
                    calls[k].run();
                }
                mibPerS.get(k).add((double) n * mib / ((System.nanoTime() - t0) / 1e9));
            }
        }
        for (int k = 0; k < calls.length; k++) {
            report("java.bodies." + names[k] + ".mib_per_s", mibPerS.get(k));
        }
        System.out.println("R java.bodies.mib " + mib);
        ok.dispatcher().executorService().shutdown();
        ok.connectionPool().evictAll();
    }

    static long drain(java.io.InputStream in, byte[] buf) throws java.io.IOException {
        long total = 0;
        try (in) {
            for (int n; (n = in.read(buf)) > 0; ) {
                total += n;
            }
        }
        return total;
    }

    static void checkSize(int status, long got, long size) {
        if (status != 200 || got != size) {
            throw new IllegalStateException("unexpected download: status " + status + ", " + got + " of " + size + " bytes");
        }
    }

    static void report(String key, List<Double> values) {
        StringBuilder rounds = new StringBuilder();
        for (double v : values) {
            rounds.append(rounds.length() == 0 ? "" : ",").append(String.format(Locale.ROOT, "%.4g", v));
        }
        double[] sorted = values.stream().mapToDouble(Double::doubleValue).sorted().toArray();
        double median = sorted.length % 2 == 1 ? sorted[sorted.length / 2]
                : (sorted[sorted.length / 2 - 1] + sorted[sorted.length / 2]) / 2;
        System.out.println("R " + key + ".rounds " + rounds);
        System.out.println("R " + key + " " + String.format(Locale.ROOT, "%.6g", median));
        System.err.println("bench: " + key + " = " + String.format(Locale.ROOT, "%.4g", median) + " " + Arrays.toString(sorted));
    }
}
