using System;
using System.Runtime.InteropServices;
using System.Text;

namespace CloudAuth
{
    /// <summary>Strict UTF-8 on the way in, tolerant UTF-8 on the way out.</summary>
    internal static class Utf8
    {
        // No BOM; throw on a lone surrogate instead of silently sending U+FFFD to the library.
        private static readonly UTF8Encoding Strict = new UTF8Encoding(false, true);

        // Text the library hands back is decoded leniently: a stray byte in a header value must
        // not turn a successful response into an exception.
        private static readonly UTF8Encoding Lenient = new UTF8Encoding(false, false);

        /// <summary>
        /// <paramref name="value"/> as NUL-terminated UTF-8 for a <c>const char *</c> argument.
        /// <paramref name="what"/> names the argument in error messages; the value itself never
        /// appears in them (it may be a secret).
        /// </summary>
        internal static byte[] ToNative(string value, string paramName, string what)
        {
            if (value == null)
            {
                throw new ArgumentNullException(paramName, what + " must not be null");
            }
            if (value.IndexOf('\0') >= 0)
            {
                throw new ArgumentException(what + " contains a NUL character, which C strings cannot carry", paramName);
            }
            int length;
            try
            {
                length = Strict.GetByteCount(value);
            }
            catch (EncoderFallbackException)
            {
                // Not chained: the fallback exception's message quotes the offending characters.
                throw new ArgumentException(what + " is not valid Unicode (it contains a lone surrogate)", paramName);
            }
            byte[] bytes = new byte[length + 1];
            Strict.GetBytes(value, 0, value.Length, bytes, 0);
            return bytes;
        }

        /// <summary>Decodes a NUL-terminated UTF-8 string owned by the library; null for NULL.</summary>
        internal static string FromNative(IntPtr ptr)
        {
            if (ptr == IntPtr.Zero)
            {
                return null;
            }
            int length = 0;
            while (Marshal.ReadByte(ptr, length) != 0)
            {
                length++;
            }
            if (length == 0)
            {
                return string.Empty;
            }
            byte[] bytes = new byte[length];
            Marshal.Copy(ptr, bytes, 0, length);
            return Lenient.GetString(bytes);
        }

        internal static string Decode(byte[] bytes, int count)
        {
            return Lenient.GetString(bytes, 0, count);
        }
    }
}
