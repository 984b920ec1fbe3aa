//! Authorization server discovery: `issuer=URL` finds the token endpoint (and what the server
//! supports) in its metadata, RFC 8414 `/.well-known/oauth-authorization-server` first, then
//! OpenID Connect Discovery's `/.well-known/openid-configuration`. Fetched once per session
//! and again after a failure; the metadata's `issuer` must be the configured one (RFC 8414
//! §3.3), so a server cannot speak for another.

use super::{printable, MAX_TOKEN_RESPONSE_BYTES};
use crate::error::{quote_prefix, Code, Error, Result};
use crate::http::clients::Role;
use crate::http::header::{HeaderMap, HeaderValue, ACCEPT};
use crate::http::pipeline::{Exchange, Plain, Step};
use crate::http::request::ApiRequest;
use crate::http::transport::Transport;
use crate::http::url_policy::{check_secure, parse_http_url, redact};
use crate::http::{Method, StatusCode};
use arc_swap::ArcSwapOption;
use serde_json::Value;
use std::sync::Arc;
use url::Url;

/// What the token endpoint client needs from the authorization server's metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Metadata {
    pub issuer: String,
    pub token_endpoint: Url,
    /// RFC 8705 §5: where a client authenticating with a TLS certificate sends its token
    /// request instead (`mtls_endpoint_aliases.token_endpoint`).
    pub mtls_token_endpoint: Option<Url>,
    /// Empty when the server does not say.
    pub token_endpoint_auth_methods_supported: Vec<String>,
    /// Empty when the server does not say.
    pub dpop_signing_alg_values_supported: Vec<String>,
}

impl Metadata {
    /// The token endpoint to use: the mTLS alias when the request presents a certificate and
    /// the server names one.
    pub fn token_endpoint_for(&self, presents_certificate: bool) -> &Url {
        match &self.mtls_token_endpoint {
            Some(alias) if presents_certificate => alias,
            _ => &self.token_endpoint,
        }
    }
}

/// The metadata URLs to try, in order: RFC 8414 §3.1 inserts the well-known segment before
/// the issuer's path; OpenID Connect Discovery §4 appends it.
pub fn well_known_urls(issuer: &str) -> Result<Vec<Url>> {
    let url = parse_http_url("issuer", issuer)?;
    let path = url.path().trim_end_matches('/').to_owned();
    let mut rfc8414 = url.clone();
    rfc8414.set_path(&format!("/.well-known/oauth-authorization-server{path}"));
    let mut oidc = url;
    oidc.set_path(&format!("{path}/.well-known/openid-configuration"));
    Ok(vec![rfc8414, oidc])
}

/// One session's discovered metadata, kept after the first success.
pub struct Discovery {
    issuer: String,
    allow_insecure_http: bool,
    found: ArcSwapOption<Metadata>,
}

impl Discovery {
    pub fn new(issuer: &str, allow_insecure_http: bool) -> Result<Discovery> {
        for url in well_known_urls(issuer)? {
            check_secure("issuer", &url, allow_insecure_http)?;
        }
        Ok(Discovery {
            issuer: issuer.to_owned(),
            allow_insecure_http,
            found: ArcSwapOption::empty(),
        })
    }

    /// The metadata found so far, without I/O.
    pub fn known(&self) -> Option<Arc<Metadata>> {
        self.found.load_full()
    }

    /// The metadata, fetched now if not known yet (a failure is not remembered: the next call
    /// tries again).
    pub fn metadata(&self, transport: &Transport) -> Result<Arc<Metadata>> {
        if let Some(known) = self.known() {
            return Ok(known);
        }
        let metadata = Arc::new(self.fetch(transport)?);
        self.found.store(Some(metadata.clone()));
        Ok(metadata)
    }

    fn fetch(&self, transport: &Transport) -> Result<Metadata> {
        let urls = well_known_urls(&self.issuer)?;
        let mut not_found = Vec::new();
        for url in &urls {
            let (status, body) = get(transport, url)?;
            if status == StatusCode::OK {
                return self.read(url, &body);
            }
            if status != StatusCode::NOT_FOUND {
                return Err(self
                    .failed(&format!(
                        "GET {} answered HTTP {}",
                        redact(url),
                        status.as_u16()
                    ))
                    .with_status(status.as_u16()));
            }
            not_found.push(redact(url));
        }
        Err(self
            .failed(&format!(
                "no metadata: HTTP 404 from {}",
                not_found.join(" and ")
            ))
            .with_status(404))
    }

    pub(crate) fn read(&self, url: &Url, body: &[u8]) -> Result<Metadata> {
        let at = redact(url);
        let json: Value = serde_json::from_slice(body)
            .map_err(|e| self.failed(&format!("{at} did not answer JSON ({e})")))?;
        let field = |name: &str| json.get(name).and_then(Value::as_str);
        let issuer = field("issuer").unwrap_or("");
        if issuer != self.issuer {
            return Err(self.failed(&format!(
                "{at} names the issuer '{}', not the configured one (RFC 8414 §3.3)",
                quote_prefix(&printable(issuer), 160)
            )));
        }
        let endpoint = |name: &str, raw: &str| -> Result<Url> {
            let url = parse_http_url(name, raw).map_err(|e| self.failed(&e.message))?;
            check_secure(name, &url, self.allow_insecure_http)?;
            Ok(url)
        };
        let token_endpoint = match field("token_endpoint") {
            Some(raw) => endpoint("token_endpoint", raw)?,
            None => return Err(self.failed(&format!("{at} has no token_endpoint"))),
        };
        let mtls_token_endpoint = match json
            .get("mtls_endpoint_aliases")
            .and_then(|a| a.get("token_endpoint"))
            .and_then(Value::as_str)
        {
            Some(raw) => Some(endpoint("mtls_endpoint_aliases.token_endpoint", raw)?),
            None => None,
        };
        let strings = |name: &str| -> Vec<String> {
            json.get(name)
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(Value::as_str)
                        .map(str::to_owned)
                        .collect()
                })
                .unwrap_or_default()
        };
        Ok(Metadata {
            issuer: self.issuer.clone(),
            token_endpoint,
            mtls_token_endpoint,
            token_endpoint_auth_methods_supported: strings("token_endpoint_auth_methods_supported"),
            dpop_signing_alg_values_supported: strings("dpop_signing_alg_values_supported"),
        })
    }

    fn failed(&self, why: &str) -> Error {
        Error::new(
            Code::CLOUDAUTH_ERR_TOKEN_ENDPOINT,
            format!(
                "discovery of issuer '{}': {}",
                quote_prefix(&self.issuer, 160),
                why
            ),
        )
    }
}

const STEP: &str = "discovery request to";

/// One GET of a metadata document (`http::pipeline`, on the token transport: no redirect is
/// followed): status and the size-capped body.
fn get(transport: &Transport, url: &Url) -> Result<(StatusCode, Vec<u8>)> {
    let mut headers = HeaderMap::new();
    headers.insert(ACCEPT, HeaderValue::from_static("application/json"));
    let request = ApiRequest {
        method: Method::GET,
        url: url.clone(),
        headers,
        body: crate::http::body::Payload::empty(),
    };
    let mut exchange = Exchange::new(&request, Role::Other, STEP, transport.timeout());
    transport.run(|clients| async move {
        match transport
            .send(
                &clients,
                &mut exchange,
                &mut Plain,
                MAX_TOKEN_RESPONSE_BYTES,
            )
            .await?
        {
            Step::Done(reply) => Ok((reply.status, reply.body)),
            Step::Rejected => unreachable!("discovery has no credentials to refuse"),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn well_known_urls_follow_rfc8414_and_oidc() {
        let urls = |i: &str| {
            well_known_urls(i)
                .unwrap()
                .iter()
                .map(Url::to_string)
                .collect::<Vec<_>>()
        };
        assert_eq!(
            urls("https://idp.example"),
            [
                "https://idp.example/.well-known/oauth-authorization-server",
                "https://idp.example/.well-known/openid-configuration"
            ]
        );
        assert_eq!(
            urls("https://idp.example/tenant/v2/"),
            [
                "https://idp.example/.well-known/oauth-authorization-server/tenant/v2",
                "https://idp.example/tenant/v2/.well-known/openid-configuration"
            ]
        );
    }

    #[test]
    fn issuer_with_query_or_plain_http_is_refused() {
        assert!(
            crate::http::url_policy::parse_issuer("https://idp.example/?x=1")
                .unwrap_err()
                .message
                .starts_with("issuer")
        );
        assert!(crate::http::url_policy::parse_issuer("ftp://idp.example").is_err());
        let err = Discovery::new("http://idp.example", false).err().unwrap();
        assert_eq!(err.code, Code::CLOUDAUTH_ERR_INSECURE_URL);
        assert!(Discovery::new("http://127.0.0.1:9", false).is_ok());
    }

    #[test]
    fn mtls_alias_only_with_a_certificate() {
        let m = Metadata {
            issuer: "https://i".into(),
            token_endpoint: Url::parse("https://i/token").unwrap(),
            mtls_token_endpoint: Some(Url::parse("https://mtls.i/token").unwrap()),
            token_endpoint_auth_methods_supported: vec![],
            dpop_signing_alg_values_supported: vec![],
        };
        assert_eq!(m.token_endpoint_for(false).as_str(), "https://i/token");
        assert_eq!(m.token_endpoint_for(true).as_str(), "https://mtls.i/token");
    }
}
