//! curl's command-line options (curl 7.88's `curl --help all`, plus the newer ones that take
//! a value), to read an argv as curl does: which arguments are option values and which are
//! URLs. curl accepts any unambiguous prefix of a long option name.

/// Long options that take a value (the next argument).
#[rustfmt::skip]
pub const WITH_VALUE: &[&str] = &[
    "abstract-unix-socket", "alt-svc", "aws-sigv4", "cacert", "capath", "cert", "cert-type",
    "ciphers", "config", "connect-timeout", "connect-to", "continue-at", "cookie", "cookie-jar",
    "create-file-mode", "crlfile", "curves", "data", "data-ascii", "data-binary", "data-raw",
    "data-urlencode", "delegation", "dns-interface", "dns-ipv4-addr", "dns-ipv6-addr",
    "dns-servers", "doh-url", "dump-header", "egd-file", "engine", "etag-compare", "etag-save",
    "expect100-timeout", "form", "form-string", "ftp-account", "ftp-alternative-to-user",
    "ftp-method", "ftp-port", "ftp-ssl-ccc-mode", "happy-eyeballs-timeout-ms", "header", "help",
    "hostpubmd5", "hostpubsha256", "hsts", "interface", "json", "keepalive-time", "key",
    "key-type", "krb", "libcurl", "limit-rate", "local-port", "login-options", "mail-auth",
    "mail-from", "mail-rcpt", "max-filesize", "max-redirs", "max-time", "netrc-file", "noproxy",
    "oauth2-bearer", "output", "output-dir", "parallel-max", "pass", "pinnedpubkey", "preproxy",
    "proto", "proto-default", "proto-redir", "proxy", "proxy-cacert", "proxy-capath",
    "proxy-cert", "proxy-cert-type", "proxy-ciphers", "proxy-crlfile", "proxy-header",
    "proxy-key", "proxy-key-type", "proxy-pass", "proxy-pinnedpubkey", "proxy-service-name",
    "proxy-tls13-ciphers", "proxy-tlsauthtype", "proxy-tlspassword", "proxy-tlsuser",
    "proxy-user", "pubkey", "quote", "random-file", "range", "rate", "referer", "request",
    "request-target", "resolve", "retry", "retry-delay", "retry-max-time", "sasl-authzid",
    "service-name", "socks4", "socks4a", "socks5", "socks5-gssapi-service", "socks5-hostname",
    "speed-limit", "speed-time", "stderr", "telnet-option", "tftp-blksize", "time-cond",
    "tls-max", "tls13-ciphers", "tlsauthtype", "tlspassword", "tlsuser", "trace", "trace-ascii",
    "unix-socket", "upload-file", "url", "url-query", "user", "user-agent", "write-out",
    // Newer than 7.88.
    "variable", "ip-tos", "vlan-priority", "ech", "ipfs-gateway", "haproxy-clientip",
    "trace-config", "ssl-sessions", "sigalgs", "upload-flags", "knownhosts",
];

/// Long options without a value (each also accepts a `no-` prefix).
#[rustfmt::skip]
pub const FLAGS: &[&str] = &[
    "anyauth", "append", "basic", "cert-status", "compressed", "compressed-ssh", "create-dirs",
    "crlf", "digest", "disable", "disable-eprt", "disable-epsv", "disallow-username-in-url",
    "doh-cert-status", "doh-insecure", "fail", "fail-early", "fail-with-body", "false-start",
    "form-escape", "ftp-create-dirs", "ftp-pasv", "ftp-pret", "ftp-skip-pasv-ip", "ftp-ssl-ccc",
    "ftp-ssl-control", "get", "globoff", "haproxy-protocol", "head", "http0.9", "http1.0",
    "http1.1", "http2", "http2-prior-knowledge", "http3", "http3-only", "ignore-content-length",
    "include", "insecure", "ipv4", "ipv6", "junk-session-cookies", "list-only", "location",
    "location-trusted", "mail-rcpt-allowfails", "manual", "metalink", "negotiate", "netrc",
    "netrc-optional", "next", "no-alpn", "no-buffer", "no-clobber", "no-keepalive", "no-npn",
    "no-progress-meter", "no-sessionid", "ntlm", "ntlm-wb", "parallel", "parallel-immediate",
    "path-as-is", "post301", "post302", "post303", "progress-bar", "proxy-anyauth",
    "proxy-basic", "proxy-digest", "proxy-insecure", "proxy-negotiate", "proxy-ntlm",
    "proxy-ssl-allow-beast", "proxy-ssl-auto-client-cert", "proxy-tlsv1", "proxy1.0",
    "proxytunnel", "raw", "remote-header-name", "remote-name", "remote-name-all", "remote-time",
    "remove-on-error", "retry-all-errors", "retry-connrefused", "sasl-ir", "show-error",
    "silent", "socks5-basic", "socks5-gssapi", "socks5-gssapi-nec", "ssl", "ssl-allow-beast",
    "ssl-auto-client-cert", "ssl-no-revoke", "ssl-reqd", "ssl-revoke-best-effort", "sslv2",
    "sslv3", "styled-output", "suppress-connect-headers", "tcp-fastopen", "tcp-nodelay",
    "tftp-no-options", "tlsv1", "tlsv1.0", "tlsv1.1", "tlsv1.2", "tlsv1.3", "tr-encoding",
    "trace-time", "use-ascii", "verbose", "version", "xattr",
    // Newer than 7.88.
    "proxy-http2", "ca-native", "proxy-ca-native", "mptcp", "skip-existing", "out-null",
    "follow", "remove-on-error",
];

/// Short options that take a value (the rest of the argument, or the next one).
pub const SHORT_WITH_VALUE: &str = "EKCbcdDFPHhmoxUQreXYytzTuAw";

/// The long option an argument names, as curl resolves it: the exact name, else the only
/// option it is a prefix of (`no-` stripped from a flag). `None`: curl will refuse it itself.
pub fn resolve(name: &str) -> Option<(&'static str, bool)> {
    let all = || {
        WITH_VALUE
            .iter()
            .map(|n| (*n, true))
            .chain(FLAGS.iter().map(|n| (*n, false)))
    };
    if let Some(exact) = all().find(|(n, _)| *n == name) {
        return Some(exact);
    }
    if let Some(flag) = name.strip_prefix("no-") {
        if let Some(exact) = FLAGS.iter().find(|n| **n == flag) {
            return Some((exact, false));
        }
    }
    let mut hits = all().filter(|(n, _)| n.starts_with(name));
    match (hits.next(), hits.next()) {
        (Some(only), None) => Some(only),
        _ => None,
    }
}
