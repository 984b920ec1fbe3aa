//! The HTTP client underneath: built once per session from the config, plus the mapping of
//! transport failures to result codes and the size-capped body read.

use crate::config::Config;
use crate::error::{Code, Error, Result};
use crate::url_policy::{check_secure, redact};
use reqwest::blocking::{Client, Response};
use reqwest::redirect;
use std::io::Read;

/// Raised by the redirect policy, recognised again in [`send_error`].
#[derive(Debug)]
struct InsecureRedirect(String);

impl std::fmt::Display for InsecureRedirect {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for InsecureRedirect {}

/// `follow_redirects` is false for the token endpoint: a POST carrying the secret goes to the
/// configured URL and nowhere else. API requests follow up to 10 redirects; reqwest drops
/// `Authorization` when the host or port changes, and the policy refuses a hop to plain http.
pub fn build_client(cfg: &Config, follow_redirects: bool) -> Result<Client> {
    let allow_insecure = cfg.allow_insecure_http;
    let policy = if follow_redirects {
        redirect::Policy::custom(move |attempt| {
            if attempt.previous().len() >= 10 {
                return attempt.error("more than 10 redirects");
            }
            match check_secure("redirect target", attempt.url(), allow_insecure) {
                Ok(()) => attempt.follow(),
                Err(e) => attempt.error(InsecureRedirect(e.message)),
            }
        })
    } else {
        redirect::Policy::none()
    };
    let mut builder = Client::builder()
        .user_agent(cfg.user_agent.clone())
        .timeout(cfg.timeout)
        .connect_timeout(cfg.connect_timeout)
        .tcp_nodelay(true)
        .redirect(policy)
        .https_only(false);
    if let Some(path) = &cfg.ca_file {
        let pem = std::fs::read(path)
            .map_err(|e| Error::invalid(format!("ca_file: cannot read '{path}': {e}")))?;
        let certs = reqwest::Certificate::from_pem_bundle(&pem)
            .map_err(|e| Error::invalid(format!("ca_file: '{path}' is not a PEM bundle: {e}")))?;
        if certs.is_empty() {
            return Err(Error::invalid(format!(
                "ca_file: '{path}' holds no PEM certificate"
            )));
        }
        for cert in certs {
            builder = builder.add_root_certificate(cert);
        }
    }
    match cfg.proxy.as_deref() {
        None => {}
        Some("" | "none") => builder = builder.no_proxy(),
        Some(url) => {
            let proxy = reqwest::Proxy::all(url).map_err(|e| {
                Error::invalid(format!(
                    "proxy: '{}' is not a usable proxy URL: {e}",
                    crate::url_policy::redact_str(url)
                ))
            })?;
            builder = builder.proxy(proxy);
        }
    }
    builder.build().map_err(|e| {
        Error::new(
            Code::CLOUDAUTH_ERR_INTERNAL,
            format!("cannot build the HTTP client: {}", chain(&e)),
        )
    })
}

/// A failed send, as a result code and a message naming the step and the (redacted) URL.
pub fn send_error(err: &reqwest::Error, step: &str, url: &url::Url) -> Error {
    let shown = redact(url);
    if let Some(insecure) = find_source::<InsecureRedirect>(err) {
        return Error::new(
            Code::CLOUDAUTH_ERR_INSECURE_URL,
            format!("{step} {shown}: {insecure}"),
        );
    }
    if err.is_timeout() {
        return Error::new(
            Code::CLOUDAUTH_ERR_TIMEOUT,
            format!("{step} {shown} timed out ({})", chain(err)),
        );
    }
    Error::new(
        Code::CLOUDAUTH_ERR_NETWORK,
        format!("{step} {shown} failed: {}", chain(err)),
    )
}

/// Reads the whole body, refusing more than `cap` bytes.
pub fn read_body(resp: Response, cap: usize, step: &str, url: &url::Url) -> Result<Vec<u8>> {
    let too_large = || {
        Error::new(
            Code::CLOUDAUTH_ERR_TOO_LARGE,
            format!(
                "{step} {}: the response body exceeds the cap of {cap} bytes",
                redact(url)
            ),
        )
    };
    let declared = resp.content_length();
    if declared.is_some_and(|n| n > cap as u64) {
        return Err(too_large());
    }
    let mut body = Vec::with_capacity(declared.unwrap_or(0) as usize);
    resp.take(cap as u64 + 1)
        .read_to_end(&mut body)
        .map_err(|e| match find_source::<reqwest::Error>(&e) {
            Some(inner) => send_error(inner, step, url),
            None if e.kind() == std::io::ErrorKind::TimedOut => Error::new(
                Code::CLOUDAUTH_ERR_TIMEOUT,
                format!("{step} {}: timed out reading the body", redact(url)),
            ),
            None => Error::new(
                Code::CLOUDAUTH_ERR_NETWORK,
                format!("{step} {}: reading the body failed: {e}", redact(url)),
            ),
        })?;
    if body.len() > cap {
        return Err(too_large());
    }
    Ok(body)
}

/// The error and its causes on one line, without URLs (reqwest's own text carries the full URL).
fn chain(err: &reqwest::Error) -> String {
    let mut parts = vec![err.to_string()];
    let mut source = std::error::Error::source(err);
    while let Some(s) = source {
        let text = s.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        source = s.source();
    }
    // reqwest prints "... for url (...)": cut it, our callers show the redacted URL themselves.
    let first = &mut parts[0];
    if let Some(i) = first.find(" for url (") {
        first.truncate(i);
    }
    parts.join(": ")
}

fn find_source<'a, T: std::error::Error + 'static>(
    err: &'a (dyn std::error::Error + 'static),
) -> Option<&'a T> {
    let mut current: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = current {
        if let Some(found) = e.downcast_ref::<T>() {
            return Some(found);
        }
        current = e.source();
    }
    None
}
