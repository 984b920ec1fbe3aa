package dev.cloudauth;

import java.net.URI;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Objects;

/**
 * A session's configuration: keys and values in the order they were given, each applied with
 * {@code cloudauth_config_set} (and {@link Builder#fromEnv()} with
 * {@code cloudauth_config_from_env}) when a {@link Session} is made. Immutable.
 *
 * <pre>{@code
 * Config config = Config.builder()
 *     .clientId("demo-client").clientSecret(secret)
 *     .tokenUrl("https://api.aspose.cloud/connect/token")
 *     .baseUrl("https://api.aspose.cloud")
 *     .timeout(Duration.ofSeconds(30))
 *     .build();
 * try (Session session = new Session(config)) { ... }
 * }</pre>
 */
public final class Config {
    /** One step: {@code set(key, value)}, or {@code fromEnv(prefix)} when {@code env}. */
    static final class Entry {
        final boolean env;
        final String key;
        final String value;

        Entry(boolean env, String key, String value) {
            this.env = env;
            this.key = key;
            this.value = value;
        }
    }

    private final List<Entry> entries;
    private final EventListener listener;

    private Config(List<Entry> entries, EventListener listener) {
        this.entries = Collections.unmodifiableList(new ArrayList<>(entries));
        this.listener = listener;
    }

    public static Builder builder() {
        return new Builder();
    }

    /** A configuration from the environment alone: CLOUDAUTH_CLIENT_ID, CLOUDAUTH_CLIENT_SECRET, ... */
    public static Config fromEnv() {
        return builder().fromEnv().build();
    }

    EventListener listener() {
        return listener;
    }

    /**
     * The base_url the session will have, as far as the binding can tell: the last one set, or
     * read from the environment by a {@code fromEnv} step. Null when none.
     */
    String baseUrl() {
        String url = null;
        for (Entry e : entries) {
            if (!e.env && "base_url".equals(e.key)) {
                url = e.value;
            } else if (e.env) {
                String v = System.getenv((e.value == null ? "CLOUDAUTH_" : e.value) + "BASE_URL");
                if (v != null) {
                    url = v;
                }
            }
        }
        return url;
    }

    /**
     * A new native config with every step applied; the caller frees it. On failure the
     * config is freed and the library's error thrown.
     */
    long toNative() {
        long cfg = Lib.cloudauth_config_new();
        try {
            for (Entry e : entries) {
                int rc;
                if (e.env) {
                    rc = Lib.cloudauth_config_from_env(cfg, Text.c(e.value, "the environment prefix"));
                } else {
                    byte[] value = Text.c(e.value, "the value of " + e.key);
                    try {
                        rc = Lib.cloudauth_config_set(cfg, Text.c(e.key, "a configuration key"), value);
                    } finally {
                        Text.wipe(value); // it may be the secret
                    }
                }
                if (rc != Lib.OK) {
                    throw CloudAuthException.last(rc);
                }
            }
            return cfg;
        } catch (RuntimeException | Error e) {
            Lib.cloudauth_config_free(cfg);
            throw e;
        }
    }

    /** The keys set, in order (never their values: one may be the secret). */
    @Override
    public String toString() {
        StringBuilder sb = new StringBuilder("Config[");
        for (int i = 0; i < entries.size(); i++) {
            Entry e = entries.get(i);
            sb.append(i == 0 ? "" : ", ").append(e.env ? "fromEnv(" + (e.value == null ? "CLOUDAUTH_" : e.value) + ")" : e.key);
        }
        return sb.append(listener == null ? "]" : "] with an event listener").toString();
    }

    /**
     * Builds a {@link Config}: typed setters for the keys whose type is known, {@link #set} for
     * any key (identity providers, token caches, token_param.NAME ...), {@link #fromEnv} for
     * the environment. Later steps override earlier ones, so keys set before {@code fromEnv()}
     * are defaults the environment overrides. {@link #build()} checks every step with the
     * library: an unknown key or a malformed value is an {@link InvalidArgumentException}
     * carrying the library's message.
     */
    public static final class Builder {
        private final List<Entry> entries = new ArrayList<>();
        private EventListener listener;

        private Builder() {}

        /** Any key, as the library reads it (numbers in decimal, booleans "true"/"false"). */
        public Builder set(String key, String value) {
            entries.add(new Entry(false, key, value));
            return this;
        }

        /** Every known key from CLOUDAUTH_&lt;KEY&gt; environment variables that are set. */
        public Builder fromEnv() {
            entries.add(new Entry(true, null, null));
            return this;
        }

        /** Every known key from &lt;prefix&gt;&lt;KEY&gt; environment variables that are set. */
        public Builder fromEnv(String prefix) {
            entries.add(new Entry(true, null, Objects.requireNonNull(prefix, "prefix")));
            return this;
        }

        /** Receives the sessions' events on the binding's delivery thread (see {@link EventListener}). */
        public Builder eventListener(EventListener listener) {
            this.listener = listener;
            return this;
        }

        public Builder clientId(String clientId) {
            return set("client_id", clientId);
        }

        public Builder clientSecret(String clientSecret) {
            return set("client_secret", clientSecret);
        }

        public Builder clientSecretFile(Path file) {
            return set("client_secret_file", str(file));
        }

        public Builder tokenUrl(String url) {
            return set("token_url", url);
        }

        public Builder tokenUrl(URI url) {
            return set("token_url", str(url));
        }

        /** Relative request URLs are joined to it; the adapters send the token only to its origin. */
        public Builder baseUrl(String url) {
            return set("base_url", url);
        }

        public Builder baseUrl(URI url) {
            return set("base_url", str(url));
        }

        public Builder scope(String scope) {
            return set("scope", scope);
        }

        public Builder authMethod(AuthMethod method) {
            return set("auth_method", method == null ? null : method.key());
        }

        public Builder timeout(Duration timeout) {
            return set("timeout_ms", millis(timeout));
        }

        public Builder connectTimeout(Duration timeout) {
            return set("connect_timeout_ms", millis(timeout));
        }

        public Builder refreshSkew(Duration skew) {
            return set("refresh_skew_s", skew == null ? null : Long.toString(skew.getSeconds()));
        }

        public Builder maxRetries(int retries) {
            return set("max_retries", Integer.toString(retries));
        }

        public Builder maxRetryWait(Duration wait) {
            return set("max_retry_wait_ms", millis(wait));
        }

        public Builder defaultExpiresIn(Duration expiresIn) {
            return set("default_expires_in_s", expiresIn == null ? null : Long.toString(expiresIn.getSeconds()));
        }

        public Builder maxResponseBytes(long bytes) {
            return set("max_response_bytes", Long.toString(bytes));
        }

        public Builder userAgent(String userAgent) {
            return set("user_agent", userAgent);
        }

        public Builder caFile(Path file) {
            return set("ca_file", str(file));
        }

        /** A proxy URL, or "none" to bypass the environment's proxy. */
        public Builder proxy(String proxy) {
            return set("proxy", proxy);
        }

        public Builder allowInsecureHttp(boolean allow) {
            return set("allow_insecure_http", Boolean.toString(allow));
        }

        public Builder refreshMode(RefreshMode mode) {
            return set("refresh_mode", mode == null ? null : mode.key());
        }

        public Builder clientKeyFile(Path file) {
            return set("client_key_file", str(file));
        }

        public Builder clientKeyId(String kid) {
            return set("client_key_id", kid);
        }

        public Builder clientCertFile(Path file) {
            return set("client_cert_file", str(file));
        }

        public Builder dpop(boolean dpop) {
            return set("dpop", Boolean.toString(dpop));
        }

        public Builder issuer(String issuer) {
            return set("issuer", issuer);
        }

        public Builder audience(String audience) {
            return set("audience", audience);
        }

        /** One or more resource indicators (RFC 8707). */
        public Builder resource(String... resources) {
            return set("resource", resources == null ? null : String.join(",", resources));
        }

        /** An extra form field of the token request. */
        public Builder tokenParam(String name, String value) {
            return set("token_param." + name, value);
        }

        /** The configuration, every step checked by the library. */
        public Config build() {
            Config config = new Config(entries, listener);
            Lib.cloudauth_config_free(config.toNative());
            return config;
        }

        private static String str(Object o) {
            return o == null ? null : o.toString();
        }

        private static String millis(Duration d) {
            return d == null ? null : Long.toString(d.toMillis());
        }
    }
}
