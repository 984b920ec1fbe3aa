//! An API request as the caller describes it, checked once, and the response handed back.

use crate::error::{Error, Result};
use crate::http::url_policy::{check_secure, parse_http_url};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue, AUTHORIZATION};
use reqwest::Method;
use std::ffi::CString;
use url::Url;

#[derive(Debug)]
pub struct ApiRequest {
    pub method: Method,
    pub url: Url,
    pub headers: HeaderMap,
    /// Shared, so sending it again after a 401 copies nothing.
    pub body: bytes::Bytes,
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
        let method = Method::from_bytes(method.as_bytes()).map_err(|_| {
            Error::invalid(format!(
                "method '{}' is not a valid HTTP method",
                crate::token::shorten(method)
            ))
        })?;
        let url = resolve(target, base_url)?;
        check_secure("request URL", &url, allow_insecure_http)?;
        let mut headers = HeaderMap::new();
        for line in header_lines {
            let (name, value) = parse_header(line)?;
            headers.append(name, value);
        }
        Ok(ApiRequest {
            method,
            url,
            headers,
            body: bytes::Bytes::copy_from_slice(body),
        })
    }
}

/// The absolute URL a request `target` names: itself, or a path joined to `base_url`.
pub fn resolve(target: &str, base_url: &str) -> Result<Url> {
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
    if line.contains(['\r', '\n']) {
        return Err(Error::invalid(
            "a header contains CR or LF, which would split the request",
        ));
    }
    let (name, value) = line.split_once(':').ok_or_else(|| {
        Error::invalid(format!(
            "header '{}' is not of the form 'Name: value'",
            crate::token::shorten(line)
        ))
    })?;
    let name = HeaderName::from_bytes(name.trim().as_bytes()).map_err(|_| {
        Error::invalid(format!(
            "header name '{}' is not a valid token",
            crate::token::shorten(name)
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

/// A complete response: status, headers (lower-case names and values, NUL-terminated for C)
/// and the whole body.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(CString, CString)>,
    pub body: Vec<u8>,
}

impl Response {
    /// The headers as C strings, taken before the body is read (which consumes the response).
    pub fn c_headers(headers: &HeaderMap) -> Vec<(CString, CString)> {
        headers
            .iter()
            // Header values cannot hold NUL (hyper refuses them), so this never drops one.
            .filter_map(|(n, v)| {
                Some((
                    CString::new(n.as_str()).ok()?,
                    CString::new(v.as_bytes()).ok()?,
                ))
            })
            .collect()
    }

    /// The first value of `name`, matched case-insensitively.
    pub fn header(&self, name: &str) -> Option<&CString> {
        self.headers
            .iter()
            .find(|(n, _)| n.to_bytes().eq_ignore_ascii_case(name.as_bytes()))
            .map(|(_, v)| v)
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
    fn remote_plain_http_is_refused() {
        let err = req("http://example.com/x", &[]).unwrap_err();
        assert_eq!(err.code, crate::error::Code::CLOUDAUTH_ERR_INSECURE_URL);
    }
}
