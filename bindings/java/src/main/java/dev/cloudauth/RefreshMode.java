package dev.cloudauth;

import java.util.Locale;

/** When the session refreshes a token (the {@code refresh_mode} key). */
public enum RefreshMode {
    BACKGROUND,
    EAGER,
    INLINE;

    String key() {
        return name().toLowerCase(Locale.ROOT);
    }
}
