//! An API request as the caller describes it, checked once, and the response handed back.

use crate::error::{quote_prefix, Error, Result};
use crate::http::body::Payload;
use crate::http::url_policy::{check_secure, parse_http_url, MAX_URL_BYTES};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue, AUTHORIZATION};
use reqwest::Method;
use std::cell::RefCell;
use url::Url;

/// Longer methods are refused: the longest registered one (`UPDATEREDIRECTREF`) has 17.
pub const MAX_METHOD_BYTES: usize = 32;
/// One header line, and all of them together: common server limits (nginx: 8 KiB a line),
/// checked before anything is sent.
pub const MAX_HEADER_LINE_BYTES: usize = 8 << 10;
pub const MAX_HEADERS_BYTES: usize = 64 << 10;
/// How much of a caller's value a message quotes: a value may hold a credential further on.
const QUOTED: usize = 32;

/// Its Debug output shows the method, the URL without user info or query, the header names
/// and the body's length: a caller's headers and body may hold credentials of their own.
pub struct ApiRequest {
    pub method: Method,
    pub url: Url,
    pub headers: HeaderMap,
    /// Shared, so sending it again after a 401 copies nothing.
    pub body: Payload,
}

impl ApiRequest {
    /// `target` is an absolute http(s) URL or a path joined to `base_url`; headers are
    /// `"Name: value"` lines. A caller's own `Authorization` is refused: the session owns it.
    pub fn new<'a>(
        method: &str,
        target: &str,
        base_url: &str,
        allow_insecure_http: bool,
        header_lines: impl IntoIterator<Item = &'a str>,
        body: &[u8],
    ) -> Result<ApiRequest> {
        if method.len() > MAX_METHOD_BYTES {
            return Err(Error::invalid(format!(
                "method '{}' is {} bytes long; the limit is {MAX_METHOD_BYTES}",
                quote_prefix(method, QUOTED),
                method.len()
            )));
        }
        let method = Method::from_bytes(method.as_bytes()).map_err(|_| {
            Error::invalid(format!(
                "method '{}' is not a valid HTTP method",
                quote_prefix(method, QUOTED)
            ))
        })?;
        let url = resolve(target, base_url)?;
        check_secure("request URL", &url, allow_insecure_http)?;
        let mut headers = HeaderMap::new();
        let mut total = 0usize;
        for (i, line) in header_lines.into_iter().enumerate() {
            total = total.saturating_add(line.len());
            if total > MAX_HEADERS_BYTES {
                return Err(Error::invalid(format!(
                    "the headers add up to more than {MAX_HEADERS_BYTES} bytes (at headers[{i}])"
                )));
            }
            let (name, value) = parse_header(line)?;
            headers.append(name, value);
        }
        Ok(ApiRequest {
            method,
            url,
            headers,
            body: Payload::Bytes(bytes::Bytes::copy_from_slice(body)),
        })
    }
}

impl std::fmt::Debug for ApiRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.headers.keys().map(|n| n.as_str()).collect();
        f.debug_struct("ApiRequest")
            .field("method", &self.method)
            .field("url", &crate::http::url_policy::redact(&self.url))
            .field("headers", &names)
            .field("body_len", &self.body.length())
            .finish()
    }
}

thread_local! {
    /// The last (target, base_url) this thread resolved, and its URL: a program sends to the
    /// same few URLs over and over, and a parse costs ~6,300 instructions, 7% of a whole GET
    /// (`bench/callgrind.sh`); a hit costs two compares and a clone.
    static LAST_RESOLVED: RefCell<Option<(String, String, Url)>> = const { RefCell::new(None) };
}

/// The absolute URL a request `target` names: itself, or a path joined to `base_url`.
pub fn resolve(target: &str, base_url: &str) -> Result<Url> {
    let hit = LAST_RESOLVED.with(|last| match &*last.borrow() {
        Some((t, b, url)) if t == target && b == base_url => Some(url.clone()),
        _ => None,
    });
    if let Some(url) = hit {
        return Ok(url);
    }
    let url = resolve_uncached(target, base_url)?;
    LAST_RESOLVED.with(|last| {
        *last.borrow_mut() = Some((target.to_owned(), base_url.to_owned(), url.clone()));
    });
    Ok(url)
}

fn resolve_uncached(target: &str, base_url: &str) -> Result<Url> {
    // Checked before any parsing or joining: the message then quotes a bounded prefix only.
    if target.len() > MAX_URL_BYTES {
        return Err(Error::invalid(format!(
            "request URL '{}' is {} bytes long; the limit is {MAX_URL_BYTES}",
            crate::http::url_policy::redact_str(target),
            target.len()
        )));
    }
    // Absolute when a scheme comes before any '/', '?' or '#' (RFC 3986 §3.1); a path's query
    // may itself hold "://" (e.g. "/redirect?to=https://...").
    let scheme_end = target.find(':');
    let path_start = target.find(['/', '?', '#']).unwrap_or(target.len());
    if scheme_end.is_some_and(|i| i > 0 && i < path_start) {
        return parse_http_url("request URL", target);
    }
    let joined = format!(
        "{}/{}",
        base_url.trim_end_matches('/'),
        target.trim_start_matches('/')
    );
    parse_http_url("request URL", &joined)
}

fn parse_header(line: &str) -> Result<(HeaderName, HeaderValue)> {
    if line.len() > MAX_HEADER_LINE_BYTES {
        return Err(Error::invalid(format!(
            "header '{}' is {} bytes long; the limit is {MAX_HEADER_LINE_BYTES}",
            quote_prefix(line.split(':').next().unwrap_or(""), QUOTED),
            line.len()
        )));
    }
    if line.contains(['\r', '\n']) {
        return Err(Error::invalid(
            "a header contains CR or LF, which would split the request",
        ));
    }
    let (name, value) = line.split_once(':').ok_or_else(|| {
        Error::invalid(format!(
            "header '{}' is not of the form 'Name: value'",
            quote_prefix(line, QUOTED)
        ))
    })?;
    let name = HeaderName::from_bytes(name.trim().as_bytes()).map_err(|_| {
        Error::invalid(format!(
            "header name '{}' is not a valid token",
            quote_prefix(name, QUOTED)
        ))
    })?;
    if name == AUTHORIZATION {
        return Err(Error::invalid(
            "the Authorization header is set by the session; do not pass one",
        ));
    }
    let value = HeaderValue::from_str(value.trim()).map_err(|_| {
        Error::invalid(format!(
            "the value of header '{name}' holds characters not allowed in a header"
        ))
    })?;
    Ok((name, value))
}

/// A complete response: status, headers (lower-case names, in the order received) and the
/// whole body.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl Response {
    /// The first value of `name`, matched case-insensitively.
    pub fn header(&self, name: &str) -> Option<&HeaderValue> {
        self.headers.get(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(target: &str, headers: &[&str]) -> Result<ApiRequest> {
        ApiRequest::new(
            "GET",
            target,
            "http://127.0.0.1:9/api/",
            false,
            headers.iter().copied(),
            b"",
        )
    }

    #[test]
    fn paths_join_the_base_and_absolute_urls_stand() {
        assert_eq!(
            req("/v5.0/ocr", &[]).unwrap().url.as_str(),
            "http://127.0.0.1:9/api/v5.0/ocr"
        );
        assert_eq!(
            req("v5.0/ocr?id=1", &[]).unwrap().url.as_str(),
            "http://127.0.0.1:9/api/v5.0/ocr?id=1"
        );
        assert_eq!(
            req("https://other.example/x", &[]).unwrap().url.as_str(),
            "https://other.example/x"
        );
    }

    #[test]
    fn a_resolved_url_is_reused_only_for_the_same_target_and_base() {
        let a = resolve("/x?q=1", "http://127.0.0.1:9/a/").unwrap();
        assert_eq!(a.as_str(), "http://127.0.0.1:9/a/x?q=1");
        assert_eq!(resolve("/x?q=1", "http://127.0.0.1:9/a/").unwrap(), a);
        let b = resolve("/x?q=1", "http://127.0.0.1:9/b/").unwrap();
        assert_eq!(b.as_str(), "http://127.0.0.1:9/b/x?q=1");
        let c = resolve("/y", "http://127.0.0.1:9/b/").unwrap();
        assert_eq!(c.as_str(), "http://127.0.0.1:9/b/y");
        assert!(resolve("ftp://127.0.0.1/x", "http://127.0.0.1:9/b/").is_err());
        assert_eq!(resolve("/y", "http://127.0.0.1:9/b/").unwrap(), c);
    }

    #[test]
    fn bad_headers_are_refused() {
        for h in [
            "X-A: b\r\nX-Evil: 1",
            "no colon",
            "bad name: v",
            "Authorization: Bearer x",
            "X: \u{1}",
        ] {
            assert!(req("/x", &[h]).is_err(), "{h:?}");
        }
        let ok = req("/x", &["Content-Type: application/json", "X-Empty:"]).unwrap();
        assert_eq!(ok.headers["content-type"], "application/json");
    }

    #[test]
    fn oversized_input_is_refused_with_a_bounded_message() {
        let long_url = format!("http://127.0.0.1:9/{}", "a".repeat(1 << 20));
        let long_path = format!("/{}", "p".repeat(MAX_URL_BYTES));
        let long_value = format!("X-Big: {}", "v".repeat(MAX_HEADER_LINE_BYTES));
        let many: Vec<String> = (0..20)
            .map(|i| format!("X-{i}: {}", "v".repeat(4000)))
            .collect();
        let cases: Vec<Result<ApiRequest>> = vec![
            req(&long_url, &[]),
            req(&long_path, &[]),
            req("/x", &[&long_value]),
            req("/x", &many.iter().map(String::as_str).collect::<Vec<_>>()),
            ApiRequest::new(
                &"G".repeat(1 << 20),
                "/x",
                "http://127.0.0.1:9/",
                false,
                [],
                b"",
            ),
        ];
        for (i, r) in cases.into_iter().enumerate() {
            let err = r.unwrap_err();
            assert_eq!(
                err.code,
                crate::error::Code::CLOUDAUTH_ERR_INVALID_ARGUMENT,
                "{i}"
            );
            assert!(err.message.len() < 400, "{i}: {} bytes", err.message.len());
        }
        assert!(req(&format!("/{}", "p".repeat(4000)), &[]).is_ok());
    }

    #[test]
    fn remote_plain_http_is_refused() {
        let err = req("http://example.com/x", &[]).unwrap_err();
        assert_eq!(err.code, crate::error::Code::CLOUDAUTH_ERR_INSECURE_URL);
    }
}
