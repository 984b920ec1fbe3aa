package dev.cloudauth;

import com.sun.jna.Native;
import com.sun.jna.NativeLibrary;
import com.sun.jna.Platform;
import com.sun.jna.Pointer;
import java.io.File;
import java.nio.charset.StandardCharsets;

/**
 * The C ABI (include/cloudauth.h) through JNA direct mapping: {@code static native} methods
 * bound once, the fastest way JNA calls C. Pointers travel as {@code long} addresses, so a call
 * allocates no {@link Pointer}; out-parameters are one-element {@code long[]} (64-bit Linux:
 * size_t and pointers are 8 bytes). Strings go in as NUL-terminated UTF-8 {@code byte[]}.
 *
 * <p>The library is loaded from, in order: the file named by {@code CLOUDAUTH_LIBRARY}; the copy
 * inside this jar ({@code linux-x86-64/libcloudauth.so}, JNA's resource path); the system's
 * library search ({@code libcloudauth.so}). A failure names every place it looked.
 */
final class Lib {
    static final int OK = 0;
    static final int ERR_BUFFER_TOO_SMALL = 2;
    static final int ERR_TIMEOUT = 5;
    static final int ERR_CANCELLED = 11;
    static final int ERR_WOULD_BLOCK = 12;

    /** Where the library was loaded from (for {@link CloudAuth#libraryPath()}). */
    static final String PATH;
    private static final NativeLibrary LIBRARY;

    static {
        NativeLibrary lib = load();
        PATH = lib.getFile() == null ? lib.getName() : lib.getFile().getAbsolutePath();
        Native.register(Lib.class, lib);
        LIBRARY = lib;
    }

    /** The address of an exported function (for {@link Ffm}). */
    static long address(String function) {
        return Pointer.nativeValue(LIBRARY.getFunction(function));
    }

    private Lib() {}

    private static NativeLibrary load() {
        String override = System.getenv("CLOUDAUTH_LIBRARY");
        if (override != null && !override.isEmpty()) {
            try {
                return NativeLibrary.getInstance(new File(override).getAbsolutePath());
            } catch (UnsatisfiedLinkError e) {
                throw new UnsatisfiedLinkError("cloudauth: cannot load the library named by CLOUDAUTH_LIBRARY="
                        + override + ": " + oneLine(e.getMessage()));
            }
        }
        String resource = Platform.RESOURCE_PREFIX + "/libcloudauth.so";
        String bundled;
        try {
            File file = Native.extractFromResourcePath("cloudauth", Lib.class.getClassLoader());
            return NativeLibrary.getInstance(file.getAbsolutePath());
        } catch (java.io.IOException | UnsatisfiedLinkError e) {
            bundled = oneLine(e.getMessage());
        }
        try {
            return NativeLibrary.getInstance("cloudauth");
        } catch (UnsatisfiedLinkError e) {
            throw new UnsatisfiedLinkError("cloudauth: cannot load the native library. Looked at: CLOUDAUTH_LIBRARY (unset); "
                    + "the class path resource " + resource + " (" + bundled + "); the system library path "
                    + "(java.library.path, jna.library.path, LD_LIBRARY_PATH, ld.so.cache) for libcloudauth.so ("
                    + oneLine(e.getMessage()) + "). Set CLOUDAUTH_LIBRARY to the library's path.");
        }
    }

    private static String oneLine(String message) {
        if (message == null) {
            return "no reason given";
        }
        // JNA's reasons span lines (one per place it tried): one bounded line.
        String line = message.trim().replaceAll(":?\\s*\\R\\s*", ": ");
        return line.length() > 400 ? line.substring(0, 400) + "..." : line;
    }

    /** A NUL-terminated UTF-8 copy of {@code s}; the caller has checked it holds no NUL. */
    static byte[] cstr(String s) {
        byte[] utf8 = s.getBytes(StandardCharsets.UTF_8);
        byte[] out = new byte[utf8.length + 1];
        System.arraycopy(utf8, 0, out, 0, utf8.length);
        return out;
    }

    /** The NUL-terminated UTF-8 string at {@code address}; "" for 0. */
    static String string(long address) {
        return address == 0 ? "" : new Pointer(address).getString(0, "UTF-8");
    }

    /** The last failure's message on this thread. */
    static String lastError() {
        return string(cloudauth_last_error());
    }

    static native long cloudauth_version();

    static native long cloudauth_result_name(int r);

    static native long cloudauth_last_error();

    static native long cloudauth_config_new();

    static native int cloudauth_config_set(long cfg, byte[] key, byte[] value);

    static native int cloudauth_config_from_env(long cfg, byte[] prefix);

    static native void cloudauth_config_free(long cfg);

    static native int cloudauth_config_set_event_queue(long cfg, long q, long tag);

    static native long cloudauth_queue_new();

    static native int cloudauth_queue_wait(long q, int timeoutMs, long[] out);

    static native void cloudauth_completion_free(long c);

    static native int cloudauth_session_request_queued(long s, byte[] method, byte[] url, long headers, long nHeaders,
            byte[] body, long bodyLen, long q, long tag, long[] outOp);

    static native int cloudauth_session_token_queued(long s, long q, long tag, long[] outOp);

    static native void cloudauth_op_cancel(long op);

    static native void cloudauth_op_free(long op);

    static native short cloudauth_response_status(long r);

    static native long cloudauth_response_body(long r, long[] len);

    static native long cloudauth_response_header_count(long r);

    static native int cloudauth_response_header_at(long r, long index, long[] name, long[] value);

    static native void cloudauth_response_free(long r);

    static native int cloudauth_session_new(long cfg, long[] out);

    static native int cloudauth_session_token(long s, long buf, long bufLen, long tokenLen);

    static native int cloudauth_session_token_cached(long s, long buf, long bufLen, long tokenLen);

    static native int cloudauth_session_token_expires_in(long s, long[] seconds);

    static native int cloudauth_session_invalidate(long s);

    static native int cloudauth_session_invalidate_token(long s, byte[] token);

    static native int cloudauth_session_check_url(long s, byte[] url);

    static native long cloudauth_session_origin(long s);

    static native int cloudauth_session_request(long s, byte[] method, byte[] url, long headers, long nHeaders,
            byte[] body, long bodyLen, long[] out);

    /** {@code body} and {@code sink}: addresses of a cloudauth_body_source / cloudauth_body_sink, or 0. */
    static native int cloudauth_session_request_stream_body(long s, byte[] method, byte[] url, long headers, long nHeaders,
            long body, long sink, long[] out);

    static native int cloudauth_session_set_credentials(long s, byte[] clientId, byte[] clientSecret);

    static native int cloudauth_session_stats(long s, long out, long size);

    static native void cloudauth_session_free(long s);
}
