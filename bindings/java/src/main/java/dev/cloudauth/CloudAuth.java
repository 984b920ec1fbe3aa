package dev.cloudauth;

/** Facts about the loaded native library. */
public final class CloudAuth {
    private CloudAuth() {}

    /** The library's version, e.g. "0.1.0". */
    public static String version() {
        return Lib.string(Lib.cloudauth_version());
    }

    /**
     * How the token calls reach the library: "ffm" (java.lang.foreign, on JDK 22+) or "jna".
     * Every other call goes through JNA.
     */
    public static String nativeAccess() {
        return Ffm.TOKEN != null ? "ffm" : "jna";
    }

    /** The file the library was loaded from (CLOUDAUTH_LIBRARY, the jar's copy, or the system's). */
    public static String libraryPath() {
        return Lib.PATH;
    }
}
