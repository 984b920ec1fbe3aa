namespace CloudAuth
{
    /// <summary>Facts about the loaded native library.</summary>
    public static class Library
    {
        /// <summary>The native library's version, e.g. "0.1.0" (<c>cloudauth_version()</c>).</summary>
        public static string Version
        {
            get { return Utf8.FromNative(NativeMethods.cloudauth_version()); }
        }

        /// <summary>The C name of a result code, e.g. "CLOUDAUTH_ERR_TIMEOUT" (<c>cloudauth_result_name()</c>).</summary>
        public static string ResultName(ResultCode code)
        {
            return Utf8.FromNative(NativeMethods.cloudauth_result_name((int)code));
        }
    }
}
