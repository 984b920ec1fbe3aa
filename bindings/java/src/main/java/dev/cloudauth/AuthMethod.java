package dev.cloudauth;

import java.util.Locale;

/** How the client authenticates at the token endpoint (the {@code auth_method} key). */
public enum AuthMethod {
    CLIENT_SECRET_POST,
    CLIENT_SECRET_BASIC,
    PRIVATE_KEY_JWT,
    CLIENT_SECRET_JWT,
    TLS_CLIENT_AUTH,
    SELF_SIGNED_TLS_CLIENT_AUTH;

    String key() {
        return name().toLowerCase(Locale.ROOT);
    }
}
