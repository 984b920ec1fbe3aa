package dev.cloudauth;

import java.net.URI;
import java.util.Locale;

/**
 * Scheme, host and port of a URL (the default port made explicit): the unit the adapters
 * compare before a request may carry the session's token. See docs/adapters.md.
 */
public final class Origin {
    private final String scheme;
    private final String host;
    private final int port;

    private Origin(String scheme, String host, int port) {
        this.scheme = scheme;
        this.host = host;
        this.port = port;
    }

    /** The origin of an absolute http(s) URL; null when it has none (relative, no host, other scheme). */
    public static Origin of(String url) {
        if (url == null) {
            return null;
        }
        try {
            return of(new URI(url));
        } catch (java.net.URISyntaxException e) {
            return null;
        }
    }

    /** The origin of an absolute http(s) URI, or null. */
    public static Origin of(URI uri) {
        if (uri == null || uri.getScheme() == null || uri.getHost() == null) {
            return null;
        }
        String scheme = uri.getScheme().toLowerCase(Locale.ROOT);
        int port = uri.getPort();
        if (port == -1) {
            port = defaultPort(scheme);
        }
        if (port == -1) {
            return null;
        }
        return new Origin(scheme, normalHost(uri.getHost()), port);
    }

    /** From parts as a client library keeps them (e.g. OkHttp's HttpUrl). */
    public static Origin of(String scheme, String host, int port) {
        return new Origin(scheme.toLowerCase(Locale.ROOT), normalHost(host), port);
    }

    /**
     * The session's origin, as the library reports it ({@link Session#origin()}): base_url
     * from the environment and the default count the same as one set through Config.
     */
    public static Origin ofSession(Session session) {
        String own = session.origin();
        Origin origin = of(own);
        if (origin == null) {
            throw new IllegalArgumentException("the session has no http(s) origin (" + own + "): an adapter sends the "
                    + "token only to base_url's origin (set it with Config.Builder.baseUrl)");
        }
        session.checkUrl(own); // the library's rule: https, loopback http, or allow_insecure_http
        return origin;
    }

    private static int defaultPort(String scheme) {
        return "https".equals(scheme) ? 443 : "http".equals(scheme) ? 80 : -1;
    }

    private static String normalHost(String host) {
        String h = host.toLowerCase(Locale.ROOT);
        if (h.startsWith("[") && h.endsWith("]")) {
            h = h.substring(1, h.length() - 1);
        }
        if (h.endsWith(".")) {
            h = h.substring(0, h.length() - 1);
        }
        return h;
    }

    public boolean matches(String scheme, String host, int port) {
        // Client libraries keep hosts canonical (lower case, no brackets): equals first.
        return this.port == port && (this.host.equals(host) || this.host.equals(normalHost(host)))
                && this.scheme.equalsIgnoreCase(scheme);
    }

    public boolean matches(URI uri) {
        return equals(of(uri));
    }

    @Override
    public boolean equals(Object o) {
        if (!(o instanceof Origin)) {
            return false;
        }
        Origin other = (Origin) o;
        return port == other.port && host.equals(other.host) && scheme.equals(other.scheme);
    }

    @Override
    public int hashCode() {
        return (scheme.hashCode() * 31 + host.hashCode()) * 31 + port;
    }

    @Override
    public String toString() {
        return scheme + "://" + (host.indexOf(':') >= 0 ? "[" + host + "]" : host) + ":" + port;
    }
}
