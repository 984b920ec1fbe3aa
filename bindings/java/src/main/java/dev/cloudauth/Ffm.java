package dev.cloudauth;

import java.lang.invoke.MethodHandle;
import java.lang.reflect.Array;
import java.lang.reflect.Method;

/**
 * The token calls through the FFM API (java.lang.foreign) on a JDK of 22 or newer, where it is
 * final: a downcall costs a few nanoseconds against JNA's hundreds, which is most of a cached
 * {@link Session#token()}. Everything else stays on JNA. The jar targets Java 11, so the
 * handles are built reflectively; the calls themselves are {@code invokeExact} on static final
 * handles, which the JIT inlines. Pointers are passed as 64-bit integers (ABI-identical on
 * x86-64 Linux). Off on older JDKs, when building the handles fails, or with
 * {@code -Dcloudauth.ffm=false}; {@link CloudAuth#nativeAccess()} tells which is in use.
 */
final class Ffm {
    /** {@code int cloudauth_session_token(session, buf, buf_len, &token_len)}, or null. */
    static final MethodHandle TOKEN;
    /** {@code int cloudauth_session_token_cached(...)}, or null. */
    static final MethodHandle TOKEN_CACHED;

    static {
        MethodHandle token = null;
        MethodHandle cached = null;
        if (Runtime.version().feature() >= 22 && !"false".equals(System.getProperty("cloudauth.ffm"))) {
            try {
                token = downcall(Lib.address("cloudauth_session_token"));
                cached = downcall(Lib.address("cloudauth_session_token_cached"));
            } catch (Throwable t) { // no native access granted, or an API change: JNA serves
                token = null;
                cached = null;
            }
        }
        TOKEN = token;
        TOKEN_CACHED = cached;
    }

    private Ffm() {}

    /** A handle of type (long, long, long, long) int for the C function at {@code address}. */
    private static MethodHandle downcall(long address) throws ReflectiveOperationException {
        Class<?> linkerClass = Class.forName("java.lang.foreign.Linker");
        Class<?> layoutClass = Class.forName("java.lang.foreign.MemoryLayout");
        Class<?> valueLayout = Class.forName("java.lang.foreign.ValueLayout");
        Class<?> descriptorClass = Class.forName("java.lang.foreign.FunctionDescriptor");
        Class<?> segmentClass = Class.forName("java.lang.foreign.MemorySegment");
        Class<?> optionClass = Class.forName("java.lang.foreign.Linker$Option");
        Object linker = linkerClass.getMethod("nativeLinker").invoke(null);
        Object jint = valueLayout.getField("JAVA_INT").get(null);
        Object jlong = valueLayout.getField("JAVA_LONG").get(null);
        Object args = Array.newInstance(layoutClass, 4);
        for (int i = 0; i < 4; i++) {
            Array.set(args, i, jlong);
        }
        Method of = descriptorClass.getMethod("of", layoutClass, args.getClass());
        Object descriptor = of.invoke(null, jint, args);
        Object symbol = segmentClass.getMethod("ofAddress", long.class).invoke(null, address);
        Method downcall = linkerClass.getMethod("downcallHandle", segmentClass, descriptorClass, Array.newInstance(optionClass, 0).getClass());
        return (MethodHandle) downcall.invoke(linker, symbol, descriptor, Array.newInstance(optionClass, 0));
    }

    static int token(long s, long buf, long len, long out) {
        try {
            return (int) TOKEN.invokeExact(s, buf, len, out);
        } catch (Throwable t) {
            throw new InternalErrorException("cloudauth_session_token through FFM: " + t);
        }
    }

    static int tokenCached(long s, long buf, long len, long out) {
        try {
            return (int) TOKEN_CACHED.invokeExact(s, buf, len, out);
        } catch (Throwable t) {
            throw new InternalErrorException("cloudauth_session_token_cached through FFM: " + t);
        }
    }
}
