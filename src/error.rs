//! Result codes (ABI values) and the error type every fallible step returns.

/// The outcome of a cloudauth call. The values are ABI: never renumbered, never reused.
#[allow(non_camel_case_types, clippy::upper_case_acronyms)]
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum cloudauth_result {
    /// Success.
    CLOUDAUTH_OK = 0,
    /// A NULL pointer, invalid UTF-8, an unknown configuration key, a malformed value, or CR/LF
    /// in a header.
    CLOUDAUTH_ERR_INVALID_ARGUMENT = 1,
    /// The caller's buffer is NULL or too small; the length needed has been written.
    CLOUDAUTH_ERR_BUFFER_TOO_SMALL = 2,
    /// Credentials or a token would travel over plain http to a non-loopback host. Nothing was sent.
    CLOUDAUTH_ERR_INSECURE_URL = 3,
    /// DNS, connect, TLS, or a connection reset.
    CLOUDAUTH_ERR_NETWORK = 4,
    /// A connect or total timeout expired.
    CLOUDAUTH_ERR_TIMEOUT = 5,
    /// The token endpoint refused the credentials (an RFC 6749 §5.2 error, HTTP 400/401, or an
    /// `error` field in a 200 answer).
    CLOUDAUTH_ERR_AUTH_REJECTED = 6,
    /// The token endpoint kept failing (5xx, 429, other status) after the allowed retries.
    CLOUDAUTH_ERR_TOKEN_ENDPOINT = 7,
    /// The token response is not JSON, lacks `access_token`, has an unusable `expires_in` or a
    /// `token_type` other than Bearer.
    CLOUDAUTH_ERR_BAD_TOKEN_RESPONSE = 8,
    /// A response exceeded its size cap (1 MiB for tokens, `max_response_bytes` for requests).
    CLOUDAUTH_ERR_TOO_LARGE = 9,
    /// A bug in cloudauth, caught at the boundary. The host process is unharmed.
    CLOUDAUTH_ERR_INTERNAL = 10,
    /// An async operation was cancelled, or its session was freed before it finished.
    CLOUDAUTH_ERR_CANCELLED = 11,
    /// `cloudauth_session_token_cached`: no usable token without I/O (a fetch was started).
    CLOUDAUTH_ERR_WOULD_BLOCK = 12,
}

pub use cloudauth_result as Code;

impl Code {
    /// The code's name as C spells it, e.g. `CLOUDAUTH_ERR_TIMEOUT`.
    pub fn name(self) -> &'static str {
        self.c_name().trim_end_matches('\0')
    }

    /// The code's name as C spells it, NUL-terminated for the ABI.
    pub fn c_name(self) -> &'static str {
        match self {
            Code::CLOUDAUTH_OK => "CLOUDAUTH_OK\0",
            Code::CLOUDAUTH_ERR_INVALID_ARGUMENT => "CLOUDAUTH_ERR_INVALID_ARGUMENT\0",
            Code::CLOUDAUTH_ERR_BUFFER_TOO_SMALL => "CLOUDAUTH_ERR_BUFFER_TOO_SMALL\0",
            Code::CLOUDAUTH_ERR_INSECURE_URL => "CLOUDAUTH_ERR_INSECURE_URL\0",
            Code::CLOUDAUTH_ERR_NETWORK => "CLOUDAUTH_ERR_NETWORK\0",
            Code::CLOUDAUTH_ERR_TIMEOUT => "CLOUDAUTH_ERR_TIMEOUT\0",
            Code::CLOUDAUTH_ERR_AUTH_REJECTED => "CLOUDAUTH_ERR_AUTH_REJECTED\0",
            Code::CLOUDAUTH_ERR_TOKEN_ENDPOINT => "CLOUDAUTH_ERR_TOKEN_ENDPOINT\0",
            Code::CLOUDAUTH_ERR_BAD_TOKEN_RESPONSE => "CLOUDAUTH_ERR_BAD_TOKEN_RESPONSE\0",
            Code::CLOUDAUTH_ERR_TOO_LARGE => "CLOUDAUTH_ERR_TOO_LARGE\0",
            Code::CLOUDAUTH_ERR_INTERNAL => "CLOUDAUTH_ERR_INTERNAL\0",
            Code::CLOUDAUTH_ERR_CANCELLED => "CLOUDAUTH_ERR_CANCELLED\0",
            Code::CLOUDAUTH_ERR_WOULD_BLOCK => "CLOUDAUTH_ERR_WOULD_BLOCK\0",
        }
    }
}

/// A failure: a code for programs and a one-line message for people. Messages never carry a
/// secret or a token; the code building them only ever has redacted URLs and server-sent fields.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Error {
    pub code: Code,
    pub message: String,
    /// The HTTP status behind the failure, 0 when there was no HTTP answer.
    pub http_status: u16,
}

pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    pub fn new(code: Code, message: impl Into<String>) -> Self {
        Error {
            code,
            message: message.into(),
            http_status: 0,
        }
    }

    pub fn with_status(mut self, status: u16) -> Self {
        self.http_status = status;
        self
    }

    pub fn invalid(message: impl Into<String>) -> Self {
        Error::new(Code::CLOUDAUTH_ERR_INVALID_ARGUMENT, message)
    }
}

/// The longest message a caller ever sees (`cloudauth_last_error`), in characters.
pub const MAX_MESSAGE_CHARS: usize = 512;

/// A message as callers see it: one line (control characters become spaces) and at most
/// [`MAX_MESSAGE_CHARS`] characters, cut with `…`. Applied at the C boundary to every message,
/// and by the token endpoint after it has scrubbed the server's text (never before: a cut could
/// leave half a secret that no longer matches).
pub fn one_line(message: &str) -> String {
    let printable = |c: char| if c.is_control() { ' ' } else { c };
    if message.chars().nth(MAX_MESSAGE_CHARS).is_none() {
        return message.chars().map(printable).collect();
    }
    let mut out: String = message
        .chars()
        .take(MAX_MESSAGE_CHARS - 1)
        .map(printable)
        .collect();
    out.push('…');
    out
}

/// A caller's value quoted in a message: at most `max` characters, one line, `…` when cut.
/// Values may be long (a 1 MiB URL) or hold credentials further on, so only a prefix shows.
pub fn quote_prefix(value: &str, max: usize) -> String {
    let mut out: String = value
        .chars()
        .take(max)
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if value.chars().nth(max).is_some() {
        out.push('…');
    }
    out
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_one_bounded_line() {
        assert_eq!(one_line("a\r\nb\tc"), "a  b c");
        let long = "x".repeat(10_000);
        let shown = one_line(&long);
        assert_eq!(shown.chars().count(), MAX_MESSAGE_CHARS);
        assert!(shown.ends_with('…'));
        let exact = "y".repeat(MAX_MESSAGE_CHARS);
        assert_eq!(one_line(&exact), exact);
        assert_eq!(quote_prefix("abcdef", 3), "abc…");
        assert_eq!(quote_prefix("abc", 3), "abc");
    }
}
