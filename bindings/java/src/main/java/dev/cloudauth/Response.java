package dev.cloudauth;

import com.sun.jna.Pointer;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/** A complete HTTP response: status, headers and body, copied out of the library's memory. */
public final class Response {
    private final int status;
    private final Map<String, List<String>> headers;
    private final byte[] body;

    Response(int status, Map<String, List<String>> headers, byte[] body) {
        this.status = status;
        this.headers = headers;
        this.body = body;
    }

    /** Copies a native response; the caller frees it. */
    static Response read(long r) {
        int status = Lib.cloudauth_response_status(r) & 0xFFFF;
        long[] a = new long[1];
        long[] b = new long[1];
        long data = Lib.cloudauth_response_body(r, a);
        byte[] body = a[0] == 0 ? new byte[0] : new Pointer(data).getByteArray(0, Math.toIntExact(a[0]));
        long count = Lib.cloudauth_response_header_count(r);
        Map<String, List<String>> headers = new LinkedHashMap<>();
        for (long i = 0; i < count; i++) {
            if (Lib.cloudauth_response_header_at(r, i, a, b) != Lib.OK) {
                break;
            }
            headers.computeIfAbsent(Lib.string(a[0]), k -> new ArrayList<>(1)).add(Lib.string(b[0]));
        }
        for (Map.Entry<String, List<String>> e : headers.entrySet()) {
            e.setValue(Collections.unmodifiableList(e.getValue()));
        }
        return new Response(status, Collections.unmodifiableMap(headers), body);
    }

    /** The HTTP status code, e.g. 200 or 404. */
    public int status() {
        return status;
    }

    /** Whether the status is 2xx. */
    public boolean isSuccessful() {
        return status >= 200 && status < 300;
    }

    /** Every header, names in lower case, in the order received; repeated headers keep each value. */
    public Map<String, List<String>> headers() {
        return headers;
    }

    /** The first value of header {@code name} (any case), or null. */
    public String header(String name) {
        List<String> values = headers.get(name.toLowerCase(Locale.ROOT));
        return values == null ? null : values.get(0);
    }

    /** The body's bytes (the array itself: this response's own copy). */
    public byte[] body() {
        return body;
    }

    /** The body decoded as UTF-8. */
    public String bodyString() {
        return new String(body, StandardCharsets.UTF_8);
    }

    /** Status and sizes only: headers and body are left out, whatever they hold. */
    @Override
    public String toString() {
        return "Response{status=" + status + ", headers=" + headers.size() + ", body=" + body.length + " bytes}";
    }
}
