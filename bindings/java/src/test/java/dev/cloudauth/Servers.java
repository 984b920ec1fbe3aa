package dev.cloudauth;

import java.io.IOException;
import java.net.ServerSocket;
import java.net.Socket;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.time.Duration;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * The real servers the tests talk to, each started once per test JVM on 127.0.0.1 with a
 * bounded lifetime and stopped at exit: the stand-in (tests/standin/server.py), the hostile
 * server (tests/hostile/server.py, two origins) and a private nginx.
 */
final class Servers {
    static final Path ROOT = Paths.get(System.getProperty("cloudauth.root", "../..")).toAbsolutePath().normalize();
    private static final HttpClient CONTROL = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(5)).build();

    private Servers() {}

    // ---- the stand-in ----------------------------------------------------------------------

    private static String standin;

    static synchronized String standin() {
        if (standin == null) {
            Path dir = tempDir("standin");
            Path portFile = dir.resolve("port");
            start("stand-in", new ProcessBuilder("python3", ROOT.resolve("tests/standin/server.py").toString(),
                    "--port", "0", "--lifetime", "900", "--port-file", portFile.toString()));
            standin = "http://127.0.0.1:" + waitForFile(portFile).trim();
        }
        return standin;
    }

    static Config.Builder standinConfig() {
        String base = standin();
        return Config.builder().clientId("demo-client").clientSecret("demo-secret")
                .tokenUrl(base + "/connect/token").baseUrl(base).timeout(Duration.ofSeconds(20));
    }

    static void reset() {
        post("/_control/reset", "");
    }

    static void configure(String json) {
        post("/_control/config", json);
    }

    static void revoke() {
        post("/_control/revoke", "");
    }

    static String stats() {
        return get(standin() + "/_control/stats");
    }

    static long tokenRequests() {
        return number(stats(), "token_requests");
    }

    static long apiRequests() {
        return number(stats(), "api_requests");
    }

    static long number(String json, String field) {
        Matcher m = Pattern.compile("\"" + field + "\":\\s*(\\d+)").matcher(json);
        if (!m.find()) {
            throw new AssertionError("no " + field + " in " + json);
        }
        return Long.parseLong(m.group(1));
    }

    private static void post(String path, String body) {
        try {
            HttpResponse<String> r = CONTROL.send(HttpRequest.newBuilder(URI.create(standin() + path))
                    .POST(HttpRequest.BodyPublishers.ofString(body)).header("Content-Type", "application/json").build(),
                    HttpResponse.BodyHandlers.ofString());
            if (r.statusCode() != 200) {
                throw new AssertionError(path + ": " + r.statusCode() + " " + r.body());
            }
        } catch (IOException | InterruptedException e) {
            throw new AssertionError(path + ": " + e, e);
        }
    }

    static String get(String url) {
        try {
            return CONTROL.send(HttpRequest.newBuilder(URI.create(url)).build(), HttpResponse.BodyHandlers.ofString()).body();
        } catch (IOException | InterruptedException e) {
            throw new AssertionError(url + ": " + e, e);
        }
    }

    // ---- the hostile server: two origins ----------------------------------------------------

    private static String[] hostile;

    /** {main origin, other origin}, e.g. http://127.0.0.1:1234. */
    static synchronized String[] hostile() {
        if (hostile == null) {
            Path dir = tempDir("hostile");
            Path portFile = dir.resolve("ports");
            start("hostile server", new ProcessBuilder("python3", ROOT.resolve("tests/hostile/server.py").toString(),
                    "--lifetime", "900", "--port-file", portFile.toString()));
            String[] f = waitForFile(portFile).trim().split(" ");
            hostile = new String[] {"http://127.0.0.1:" + f[1], "http://127.0.0.1:" + f[2]};
        }
        return hostile;
    }

    /** A session whose token endpoint and base_url are the hostile server's main origin. */
    static Config.Builder hostileConfig() {
        String main = hostile()[0];
        return Config.builder().clientId("id").clientSecret("secret").tokenUrl(main + "/ok").baseUrl(main)
                .timeout(Duration.ofSeconds(5)).maxRetries(0);
    }

    // ---- nginx ------------------------------------------------------------------------------

    private static String nginx;
    static final String NGINX_TOKEN = "nginx-token-0123456789abcdef";

    /** A private nginx: /connect/token answers a fixed token, /api/ping wants it, /redirect-to-api 302s there. */
    static synchronized String nginx() {
        if (nginx == null) {
            Path bin = Paths.get("/usr/sbin/nginx");
            if (!Files.isExecutable(bin)) {
                throw new AssertionError("nginx is missing (apt-get install nginx-light; tests/run/java.sh installs it)");
            }
            Path dir = tempDir("nginx");
            int port = freePort();
            String conf = "daemon off;\nworker_processes 1;\npid " + dir + "/nginx.pid;\nerror_log " + dir + "/error.log warn;\n"
                    + "events { worker_connections 4096; }\nhttp {\n access_log off;\n client_body_temp_path " + dir + "/body;\n"
                    + " server {\n  listen 127.0.0.1:" + port + ";\n"
                    + "  location = /connect/token { default_type application/json; return 200 '{\"access_token\":\"" + NGINX_TOKEN
                    + "\",\"expires_in\":3600,\"token_type\":\"Bearer\"}'; }\n"
                    + "  location = /api/ping { default_type application/json; if ($http_authorization != \"Bearer " + NGINX_TOKEN
                    + "\") { return 401; } return 200 '{\"ok\":true}\\n'; }\n"
                    + "  location = /redirect-to-api { return 302 /api/ping; }\n"
                    + "  location / { return 404; }\n }\n}\n";
            try {
                Files.write(dir.resolve("nginx.conf"), conf.getBytes(StandardCharsets.UTF_8));
            } catch (IOException e) {
                throw new AssertionError(e);
            }
            start("nginx", new ProcessBuilder(bin.toString(), "-p", dir + "/", "-c", dir + "/nginx.conf", "-e", dir + "/error.log"));
            waitForPort(port);
            nginx = "http://127.0.0.1:" + port;
        }
        return nginx;
    }

    // ---- helpers ----------------------------------------------------------------------------

    private static void start(String name, ProcessBuilder pb) {
        pb.redirectOutput(ProcessBuilder.Redirect.DISCARD).redirectError(ProcessBuilder.Redirect.INHERIT);
        try {
            Process p = pb.start();
            Runtime.getRuntime().addShutdownHook(new Thread(p::destroy));
        } catch (IOException e) {
            throw new AssertionError("cannot start the " + name + ": " + e, e);
        }
    }

    private static Path tempDir(String name) {
        try {
            Path dir = Files.createTempDirectory("cloudauth-java-" + name);
            dir.toFile().deleteOnExit();
            return dir;
        } catch (IOException e) {
            throw new AssertionError(e);
        }
    }

    private static String waitForFile(Path file) {
        for (int i = 0; i < 200; i++) {
            try {
                if (Files.exists(file) && Files.size(file) > 0) {
                    return new String(Files.readAllBytes(file), StandardCharsets.UTF_8);
                }
                Thread.sleep(50);
            } catch (IOException | InterruptedException e) {
                throw new AssertionError(e);
            }
        }
        throw new AssertionError(file + " did not appear within 10 s");
    }

    private static void waitForPort(int port) {
        for (int i = 0; i < 200; i++) {
            try {
                new Socket("127.0.0.1", port).close();
                return;
            } catch (IOException e) {
                try {
                    Thread.sleep(50);
                } catch (InterruptedException ie) {
                    throw new AssertionError(ie);
                }
            }
        }
        throw new AssertionError("nothing listens on 127.0.0.1:" + port + " after 10 s");
    }

    static int freePort() {
        try (ServerSocket s = new ServerSocket(0, 1, java.net.InetAddress.getLoopbackAddress())) {
            return s.getLocalPort();
        } catch (IOException e) {
            throw new AssertionError(e);
        }
    }
}
