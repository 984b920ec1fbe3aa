//! Which URLs may carry credentials, how URLs appear in messages, and the checks of the
//! configuration's URL values (`issuer`, `redis_url`): a leaf, which `config` may use.

use crate::error::{quote_prefix, Code, Error, Result};
use url::{Host, Url};

/// Longer URLs are refused before anything is sent (common server limits are 8 KiB; reqwest
/// itself fails on 64 KiB with an unhelpful "builder error").
pub const MAX_URL_BYTES: usize = 8 << 10;
/// How much of a URL a message shows, after redaction.
const SHOWN_CHARS: usize = 160;

/// Parses an absolute http(s) URL; `what` names it in the message ("token_url", "request URL").
pub fn parse_http_url(what: &str, value: &str) -> Result<Url> {
    if value.len() > MAX_URL_BYTES {
        return Err(Error::invalid(format!(
            "{what} '{}' is {} bytes long; the limit is {MAX_URL_BYTES}",
            redact_str(value),
            value.len()
        )));
    }
    let url = Url::parse(value).map_err(|e| {
        Error::invalid(format!(
            "{what} '{}' is not an absolute URL: {e}",
            redact_str(value)
        ))
    })?;
    match url.scheme() {
        "http" | "https" if url.host().is_some() => Ok(url),
        "http" | "https" => Err(Error::invalid(format!(
            "{what} '{}' has no host",
            redact(&url)
        ))),
        other => Err(Error::invalid(format!(
            "{what} '{}' uses scheme '{other}'; only http and https are supported",
            redact(&url)
        ))),
    }
}

/// Plain http is fine to loopback; anywhere else only when the user opted in.
pub fn check_secure(what: &str, url: &Url, allow_insecure_http: bool) -> Result<()> {
    if url.scheme() == "https" || allow_insecure_http || is_loopback(url) {
        return Ok(());
    }
    Err(Error::new(
        Code::CLOUDAUTH_ERR_INSECURE_URL,
        format!(
            "{what} '{}' is plain http to a non-loopback host, so credentials would travel unencrypted; \
             use https, or set allow_insecure_http=true if you really mean it",
            redact(url)
        ),
    ))
}

/// Whether a redirect to `url` is followed: `Ok(false)` when it is not ours to follow (not
/// http(s): the caller gets the 3xx and its Location), an error (the message) when the hop
/// breaks [`check_secure`]. Both redirect paths ask this (`transport`'s policy, `clients`).
pub fn follows_redirect_to(
    url: &Url,
    allow_insecure_http: bool,
) -> std::result::Result<bool, String> {
    if !matches!(url.scheme(), "http" | "https") {
        return Ok(false);
    }
    check_secure("redirect target", url, allow_insecure_http).map_err(|e| e.message)?;
    Ok(true)
}

/// A `proxy` value the library can use: `none` (or empty) for no proxy, else an absolute
/// http:// or https:// URL with a host (reqwest is built without SOCKS support). Checked when
/// set, so a bad value fails there and not at the first request.
pub fn check_proxy(key: &str, value: &str) -> Result<()> {
    if matches!(value, "" | "none") {
        return Ok(());
    }
    let shown = redact_str(value);
    // Only a real scheme (RFC 3986 §3.1) is quoted back: text before "://" may hold user info
    // (found by fuzz/config_value: `http:c user:secret@…://…`).
    let scheme = value.split_once("://").map(|(s, _)| s).filter(|s| {
        s.starts_with(|c: char| c.is_ascii_alphabetic())
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
    });
    let Some(scheme) = scheme else {
        return Err(Error::invalid(format!(
            "{key} '{shown}' is not a proxy URL: give http://host:port or https://host:port \
             (or none for no proxy)"
        )));
    };
    if !matches!(scheme.to_ascii_lowercase().as_str(), "http" | "https") {
        return Err(Error::invalid(format!(
            "{key} '{shown}' uses scheme '{}'; the library can use http:// and https:// proxies",
            quote_prefix(scheme, 16)
        )));
    }
    match Url::parse(value) {
        Ok(url) if url.host().is_some() => Ok(()),
        _ => Err(Error::invalid(format!(
            "{key} '{shown}' has no usable host"
        ))),
    }
}

/// `err` from a request sent through `proxy`, naming it (without user info) when the failure
/// may be the proxy's: a network failure or a timeout.
pub fn through_proxy(mut err: Error, proxy: Option<&str>) -> Error {
    let Some(proxy) = proxy.filter(|p| !matches!(*p, "" | "none")) else {
        return err;
    };
    let named = format!(" (through proxy '{}')", redact_str(proxy));
    if matches!(
        err.code,
        Code::CLOUDAUTH_ERR_NETWORK | Code::CLOUDAUTH_ERR_TIMEOUT
    ) && !err.message.ends_with(&named)
    {
        err.message.push_str(&named);
    }
    err
}

/// The `issuer` key's check: an http(s) URL without query or fragment (RFC 8414 §2).
pub fn parse_issuer(value: &str) -> Result<String> {
    let url = parse_http_url("issuer", value)?;
    if url.query().is_some() || url.fragment().is_some() {
        return Err(Error::invalid(format!(
            "issuer '{}' must not have a query or fragment (RFC 8414 §2)",
            redact(&url)
        )));
    }
    Ok(value.to_owned())
}

/// Checks a `redis_url` value; the message never shows the password.
pub fn check_redis_url(value: &str) -> Result<url::Url> {
    let url = url::Url::parse(value).map_err(|e| {
        Error::invalid(format!(
            "redis_url is not a valid URL ({e}); expected redis://[user:password@]host:port/db or rediss://…"
        ))
    })?;
    if !matches!(url.scheme(), "redis" | "rediss") {
        return Err(Error::invalid(format!(
            "redis_url '{}' uses scheme '{}'; expected redis:// or rediss:// (TLS)",
            redact(&url),
            quote_prefix(url.scheme(), 40)
        )));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(Error::invalid(format!(
            "redis_url '{}' has no host",
            redact(&url)
        )));
    }
    let db = url.path().trim_start_matches('/');
    if !db.is_empty() && db.parse::<u16>().is_err() {
        return Err(Error::invalid(format!(
            "redis_url '{}': the path must be a database number",
            redact(&url)
        )));
    }
    ::redis::Client::open(value).map_err(|_| {
        Error::invalid(format!(
            "redis_url '{}' is not accepted by the Redis client",
            redact(&url)
        ))
    })?;
    Ok(url)
}

pub fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(Host::Ipv4(ip)) => ip.is_loopback(),
        Some(Host::Ipv6(ip)) => ip.is_loopback(),
        Some(Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        None => false,
    }
}

/// The URL as messages show it: no user info, no query, no fragment (they may hold secrets),
/// and at most a bounded prefix of the rest.
pub fn redact(url: &Url) -> String {
    let mut shown = url.clone();
    let _ = shown.set_username("");
    let _ = shown.set_password(None);
    shown.set_query(None);
    shown.set_fragment(None);
    quote_prefix(shown.as_str(), SHOWN_CHARS)
}

/// Like [`redact`] for text that may not parse: cut at the first `?` or `#`, and drop user
/// info. Text that parses goes through [`redact`]: the URL parser finds user info where a
/// look for "://" does not (`http:user:pw@host`, found by fuzz/config_value).
pub fn redact_str(value: &str) -> String {
    if let Ok(url) = Url::parse(value) {
        return redact(&url);
    }
    let cut = value.find(['?', '#']).map_or(value, |i| &value[..i]);
    let shown = match (cut.find("://"), cut.rfind('@')) {
        (Some(s), Some(at)) if at > s => format!("{}{}", &cut[..s + 3], &cut[at + 1..]),
        _ => cut.to_owned(),
    };
    quote_prefix(&shown, SHOWN_CHARS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirects_are_followed_over_http_s_only_and_by_the_plain_http_rule() {
        let to = |u: &str, allow| follows_redirect_to(&Url::parse(u).unwrap(), allow);
        assert_eq!(to("https://example.com/x", false), Ok(true));
        assert_eq!(to("http://localhost:9/x", false), Ok(true));
        assert_eq!(to("ftp://example.com/x", false), Ok(false));
        assert_eq!(to("http://example.com/x", true), Ok(true));
        let refused = to("http://example.com/x?sig=hush", false).unwrap_err();
        assert!(refused.starts_with("redirect target"), "{refused}");
        assert!(!refused.contains("hush"), "{refused}");
    }

    #[test]
    fn loopback_http_is_allowed_remote_is_not() {
        let local = parse_http_url("u", "http://127.0.0.1:8080/x").unwrap();
        assert!(check_secure("u", &local, false).is_ok());
        let local6 = parse_http_url("u", "http://[::1]/x").unwrap();
        assert!(check_secure("u", &local6, false).is_ok());
        let named = parse_http_url("u", "http://LOCALHOST/x").unwrap();
        assert!(check_secure("u", &named, false).is_ok());
        let remote = parse_http_url("u", "http://example.com/x").unwrap();
        let err = check_secure("u", &remote, false).unwrap_err();
        assert_eq!(err.code, Code::CLOUDAUTH_ERR_INSECURE_URL);
        assert!(check_secure("u", &remote, true).is_ok());
        let tls = parse_http_url("u", "https://example.com/x").unwrap();
        assert!(check_secure("u", &tls, false).is_ok());
    }

    #[test]
    fn redaction_drops_query_and_userinfo() {
        let url = Url::parse("https://user:pw@host/p?client_secret=s#f").unwrap();
        assert_eq!(redact(&url), "https://host/p");
        assert_eq!(redact_str("https://u:pw@h/p?secret=1"), "https://h/p");
        // No "//" after the scheme: the URL parser still reads user info (fuzz/config_value).
        assert_eq!(
            redact_str("http:u:S3cretPw@proxy:3128"),
            "http://proxy:3128/"
        );
        assert!(!redact_str("http: x  u:S3cretPw@proxy:3128").contains("S3cretPw"));
    }

    #[test]
    fn proxies_are_http_s_urls_or_none() {
        for ok in [
            "",
            "none",
            "http://127.0.0.1:3128",
            "HTTPS://proxy.example:443/",
        ] {
            assert!(check_proxy("proxy", ok).is_ok(), "{ok}");
        }
        for bad in [
            "ftp://p.example:21",
            "socks5://p.example:1080",
            "bogus",
            "http://",
            "p:3128",
        ] {
            let e = check_proxy("proxy", bad).unwrap_err();
            assert_eq!(e.code, Code::CLOUDAUTH_ERR_INVALID_ARGUMENT);
            assert!(e.message.starts_with("proxy '"), "{}", e.message);
        }
        let e = check_proxy("proxy", "socks5://u:hush@p:1").unwrap_err();
        assert!(!e.message.contains("hush"), "{}", e.message);
    }

    #[test]
    fn a_proxy_value_whose_scheme_is_not_one_never_shows_what_follows() {
        let e = check_proxy("proxy", "http:c\u{0}user:S3cretPasswo@o.0.1tp://u1328").unwrap_err();
        assert!(!e.message.contains("S3cr"), "{}", e.message);
        assert!(e.message.contains("is not a proxy URL"), "{}", e.message);
    }

    #[test]
    fn a_network_failure_names_the_proxy_once() {
        let e = Error::new(Code::CLOUDAUTH_ERR_NETWORK, "token request x failed");
        let e = through_proxy(e, Some("http://u:hush@127.0.0.1:9"));
        let e = through_proxy(e, Some("http://u:hush@127.0.0.1:9"));
        assert_eq!(
            e.message,
            "token request x failed (through proxy 'http://127.0.0.1:9/')"
        );
        let e = Error::new(Code::CLOUDAUTH_ERR_TOO_LARGE, "big");
        assert_eq!(through_proxy(e, Some("http://p:1")).message, "big");
    }

    #[test]
    fn rejects_other_schemes() {
        assert!(parse_http_url("u", "ftp://h/").is_err());
        assert!(parse_http_url("u", "/relative").is_err());
    }
}
