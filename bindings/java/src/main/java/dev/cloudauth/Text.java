package dev.cloudauth;

import java.nio.ByteBuffer;
import java.nio.CharBuffer;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;

/** Java strings to the library's NUL-terminated UTF-8, refusing what C cannot carry. */
final class Text {
    private Text() {}

    /**
     * {@code s} as NUL-terminated UTF-8, or null for null (the library then reports the NULL
     * argument itself). A NUL inside, or a lone surrogate (not encodable as UTF-8), is an
     * {@link InvalidArgumentException} naming {@code what}, never a silently changed value.
     */
    static byte[] c(String s, String what) {
        if (s == null) {
            return null;
        }
        int n = s.length();
        boolean ascii = true;
        for (int i = 0; i < n; i++) {
            char ch = s.charAt(i);
            if (ch == 0) {
                throw new InvalidArgumentException(what + " contains a NUL character");
            }
            if (ch >= 0x80) {
                ascii = false;
            }
        }
        if (ascii) {
            byte[] out = new byte[n + 1];
            for (int i = 0; i < n; i++) {
                out[i] = (byte) s.charAt(i);
            }
            return out;
        }
        ByteBuffer utf8;
        try {
            utf8 = StandardCharsets.UTF_8.newEncoder()
                    .onMalformedInput(CodingErrorAction.REPORT)
                    .onUnmappableCharacter(CodingErrorAction.REPORT)
                    .encode(CharBuffer.wrap(s));
        } catch (CharacterCodingException e) {
            throw new InvalidArgumentException(what + " is not valid Unicode (a lone surrogate)");
        }
        byte[] out = new byte[utf8.remaining() + 1];
        utf8.get(out, 0, out.length - 1);
        return out;
    }

    /** Zeroes a copy of a secret once the library has its own. */
    static void wipe(byte[] b) {
        if (b != null) {
            java.util.Arrays.fill(b, (byte) 0);
        }
    }
}
