// cloudauth from Java: get a token, submit an image for OCR, poll the task, print the text.
//
// The same flow as examples/c/demo.c, against the Aspose-compatible API at $STANDIN_URL (the
// local stand-in, tests/standin/server.py). Prints the token's length, never the token.
// tests/run/java.sh runs it with the jar built by bindings/java and JNA on the class path:
//
//   java -cp cloudauth-0.1.0.jar:jna-5.17.0.jar examples/java/OcrDemo.java
//
// No JSON library: the two fields read here are picked out with regular expressions.

import java.net.URLEncoder;
import java.nio.charset.StandardCharsets;
import java.util.Base64;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import dev.cloudauth.CloudAuth;
import dev.cloudauth.CloudAuthException;
import dev.cloudauth.Config;
import dev.cloudauth.Response;
import dev.cloudauth.Session;

public class OcrDemo {
    // A 1x1 transparent PNG: the stand-in only counts its bytes.
    private static final String IMAGE_BASE64 =
            "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==";
    private static final int MAX_POLLS = 50;

    public static void main(String[] args) throws InterruptedException {
        String baseUrl = System.getenv("STANDIN_URL");
        if (baseUrl == null || baseUrl.isEmpty()) {
            System.err.println("OcrDemo: set STANDIN_URL (e.g. run it under tests/standin/with_server.sh)");
            System.exit(2);
        }
        baseUrl = baseUrl.replaceAll("/+$", "");
        Config config = Config.builder()
                .clientId(envOr("CLOUDAUTH_CLIENT_ID", "demo-client"))
                .clientSecret(envOr("CLOUDAUTH_CLIENT_SECRET", "demo-secret"))
                .tokenUrl(baseUrl + "/connect/token")
                .baseUrl(baseUrl)
                .timeout(java.time.Duration.ofSeconds(10))
                .build();
        try (Session session = new Session(config)) {
            System.out.println("cloudauth " + CloudAuth.version() + ": token of " + session.token().length() + " characters");

            byte[] image = Base64.getDecoder().decode(IMAGE_BASE64);
            String request = "{\"image\": \"" + Base64.getEncoder().encodeToString(image)
                    + "\", \"settings\": {\"language\": \"English\"}}";
            Response submitted = session.request("POST", "/v5.0/ocr/RecognizeImage",
                    Map.of("Content-Type", "application/json"), request.getBytes(StandardCharsets.UTF_8));
            if (!submitted.isSuccessful()) {
                System.err.println("OcrDemo: submit failed with HTTP " + submitted.status() + ": " + submitted.bodyString());
                System.exit(1);
            }
            String taskId = submitted.bodyString().trim();
            System.out.println("submitted " + image.length + " image bytes: task " + taskId);

            for (int attempt = 1; attempt <= MAX_POLLS; attempt++) {
                Response poll = session.request("GET",
                        "/v5.0/ocr/RecognizeImage?id=" + URLEncoder.encode(taskId, StandardCharsets.UTF_8));
                if (!poll.isSuccessful()) {
                    System.err.println("OcrDemo: poll failed with HTTP " + poll.status() + ": " + poll.bodyString());
                    System.exit(1);
                }
                String task = poll.bodyString();
                String status = field(task, "taskStatus");
                System.out.println("poll " + attempt + ": " + status);
                if ("Completed".equals(status)) {
                    Matcher data = Pattern.compile("\"data\"\\s*:\\s*\"([^\"]*)\"").matcher(task);
                    if (!data.find()) {
                        System.err.println("OcrDemo: unexpected answer: a completed task without text data");
                        System.exit(1);
                    }
                    do {
                        System.out.println("recognized text: "
                                + new String(Base64.getDecoder().decode(data.group(1)), StandardCharsets.UTF_8));
                    } while (data.find());
                    return;
                }
                if (!"Pending".equals(status) && !"Processing".equals(status)) {
                    System.err.println("OcrDemo: task ended as " + status);
                    System.exit(1);
                }
                Thread.sleep(100);
            }
            System.err.println("OcrDemo: task not completed after " + MAX_POLLS + " polls");
            System.exit(1);
        } catch (CloudAuthException e) {
            // The message says which step failed and why; it never contains the secret or a token.
            System.err.println("OcrDemo: " + e.code() + ": " + e.getMessage());
            System.exit(1);
        }
    }

    private static String envOr(String name, String fallback) {
        String v = System.getenv(name);
        return v == null || v.isEmpty() ? fallback : v;
    }

    private static String field(String json, String name) {
        Matcher m = Pattern.compile("\"" + name + "\"\\s*:\\s*\"([^\"]*)\"").matcher(json);
        return m.find() ? m.group(1) : null;
    }
}
