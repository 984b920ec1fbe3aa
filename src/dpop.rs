//! DPoP (RFC 9449): the session's proof-of-possession key and the proofs it signs, one per
//! request (token endpoint and API), with the server nonces it has learned.
//!
//! The key is generated per session (ES256) unless `dpop_key_file` pins one; it is read once,
//! at session_new, since every token the session holds is bound to it. A token bound to a
//! generated key is useless to any other process, so such tokens never go to a shared cache.

use crate::error::{Error, Result};
use crate::http::header::{HeaderMap, HeaderName, HeaderValue, WWW_AUTHENTICATE};
use crate::jose::{b64url, jwk, random_id, unix_now, Alg, SigningKey};
use arc_swap::ArcSwap;
use url::Url;

pub static DPOP: HeaderName = HeaderName::from_static("dpop");
static DPOP_NONCE: HeaderName = HeaderName::from_static("dpop-nonce");
/// Nonces are kept for this many origins (token endpoint, API servers); the oldest goes first.
const MAX_NONCE_ORIGINS: usize = 16;
/// A longer nonce is ignored (RFC 9449 nonces are short opaque strings).
const MAX_NONCE_BYTES: usize = 512;

pub struct Dpop {
    key: SigningKey,
    /// The proof header (`typ`, `alg`, `jwk`), base64url-encoded once for the session.
    header_b64: String,
    /// RFC 7638 thumbprint of the public key (the token's `cnf.jkt`).
    thumbprint: String,
    /// True when the key comes from `dpop_key_file`.
    pinned: bool,
    /// (origin, nonce) as last learned from each server. Lock-free, so a child of fork() never
    /// finds it held by a thread that did not follow.
    nonces: ArcSwap<Vec<(String, String)>>,
}

impl std::fmt::Debug for Dpop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Dpop({}, {})", self.key.alg().name(), self.thumbprint)
    }
}

impl Dpop {
    /// The key of `key_file` (`dpop_key_file`), or a new ES256 one. A bad file is an error
    /// naming it.
    pub fn new(key_file: Option<&str>) -> Result<Dpop> {
        let (key, pinned) = match key_file {
            Some(path) => (SigningKey::from_file("dpop_key_file", path, None)?, true),
            None => (SigningKey::generate_es256(), false),
        };
        if key.alg() == Alg::HS256 {
            return Err(Error::invalid(
                "dpop_key_file: DPoP needs an asymmetric key",
            ));
        }
        let jwk = jwk::public_jwk(&key).expect("asymmetric keys have a public JWK");
        let header = format!(
            r#"{{"typ":"dpop+jwt","alg":"{}","jwk":{jwk}}}"#,
            key.alg().name()
        );
        Ok(Dpop {
            header_b64: b64url(header.as_bytes()),
            thumbprint: jwk::thumbprint(&key).expect("asymmetric"),
            key,
            pinned,
            nonces: ArcSwap::from_pointee(Vec::new()),
        })
    }

    pub fn alg(&self) -> Alg {
        self.key.alg()
    }

    pub fn thumbprint(&self) -> &str {
        &self.thumbprint
    }

    pub fn pinned(&self) -> bool {
        self.pinned
    }

    /// A proof for one request: `htm`, `htu` (no query or fragment), `iat`, a unique `jti`,
    /// `ath` (the hash of the token it goes with, if any), and the nonce last learned from
    /// `url`'s origin.
    pub fn proof(&self, method: &str, url: &Url, ath: Option<&str>) -> HeaderValue {
        let mut htu = url.clone();
        htu.set_query(None);
        htu.set_fragment(None);
        let mut claims = format!(
            r#"{{"jti":"{}","htm":{},"htu":{},"iat":{}"#,
            random_id(),
            json_string(method),
            json_string(htu.as_str()),
            unix_now()
        );
        if let Some(ath) = ath {
            claims.push_str(r#","ath":""#);
            claims.push_str(ath);
            claims.push('"');
        }
        if let Some(nonce) = self.nonce_for(url) {
            claims.push_str(r#","nonce":"#);
            claims.push_str(&json_string(&nonce));
        }
        claims.push('}');
        let mut jws = String::with_capacity(self.header_b64.len() + claims.len() * 2 + 100);
        jws.push_str(&self.header_b64);
        jws.push('.');
        jws.push_str(&b64url(claims.as_bytes()));
        let signature = self.key.sign(jws.as_bytes());
        jws.push('.');
        jws.push_str(&b64url(&signature));
        let mut value = HeaderValue::try_from(jws).expect("base64url is a valid header value");
        value.set_sensitive(true);
        value
    }

    /// Remembers a `DPoP-Nonce` the server at `url` sent (on an error or a success). True when
    /// there was one.
    pub fn learn(&self, url: &Url, headers: &HeaderMap) -> bool {
        let Some(nonce) = headers.get(&DPOP_NONCE).and_then(|v| v.to_str().ok()) else {
            return false;
        };
        if nonce.is_empty() || nonce.len() > MAX_NONCE_BYTES {
            return false;
        }
        let origin = url.origin().ascii_serialization();
        self.nonces.rcu(|current| {
            let mut nonces: Vec<(String, String)> = current
                .iter()
                .filter(|(o, _)| *o != origin)
                .cloned()
                .collect();
            if nonces.len() == MAX_NONCE_ORIGINS {
                nonces.remove(0);
            }
            nonces.push((origin.clone(), nonce.to_owned()));
            nonces
        });
        true
    }

    fn nonce_for(&self, url: &Url) -> Option<String> {
        let nonces = self.nonces.load();
        if nonces.is_empty() {
            return None;
        }
        let origin = url.origin().ascii_serialization();
        nonces
            .iter()
            .find(|(o, _)| *o == origin)
            .map(|(_, n)| n.clone())
    }
}

/// Whether an API 401 asks for a nonce: `WWW-Authenticate: DPoP error="use_dpop_nonce"`.
pub fn asks_for_nonce(headers: &HeaderMap) -> bool {
    headers.get_all(WWW_AUTHENTICATE).iter().any(|v| {
        v.to_str().is_ok_and(|v| {
            let v = v.trim_start();
            v.len() > 4 && v[..4].eq_ignore_ascii_case("dpop") && v.contains("use_dpop_nonce")
        })
    })
}

fn json_string(s: &str) -> String {
    serde_json::to_string(s).expect("strings serialise")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dpop() -> Dpop {
        Dpop::new(None).unwrap()
    }

    fn claims(proof: &HeaderValue) -> serde_json::Value {
        use base64::Engine as _;
        let text = proof.to_str().unwrap();
        let part = text.split('.').nth(1).unwrap();
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(part)
            .unwrap();
        serde_json::from_slice(&bytes).unwrap()
    }

    #[test]
    fn proof_names_the_request_without_query_and_learns_nonces_per_origin() {
        let d = dpop();
        let url = Url::parse("https://api.example:8443/v1/x?secret=1#frag").unwrap();
        let c = claims(&d.proof("POST", &url, None));
        assert_eq!(c["htm"], "POST");
        assert_eq!(c["htu"], "https://api.example:8443/v1/x");
        assert!(c.get("ath").is_none() && c.get("nonce").is_none());
        let mut h = HeaderMap::new();
        h.insert("dpop-nonce", HeaderValue::from_static("n-1"));
        assert!(d.learn(&url, &h));
        assert_eq!(claims(&d.proof("GET", &url, None))["nonce"], "n-1");
        let other = Url::parse("https://other.example/").unwrap();
        assert!(claims(&d.proof("GET", &other, None)).get("nonce").is_none());
        let a = claims(&d.proof("GET", &url, None))["jti"].clone();
        let b = claims(&d.proof("GET", &url, None))["jti"].clone();
        assert_ne!(a, b);
    }

    #[test]
    fn nonce_challenge_is_recognised_only_for_dpop() {
        let mut h = HeaderMap::new();
        h.insert(
            WWW_AUTHENTICATE,
            HeaderValue::from_static(r#"Bearer error="use_dpop_nonce""#),
        );
        assert!(!asks_for_nonce(&h));
        h.insert(
            WWW_AUTHENTICATE,
            HeaderValue::from_static(r#"DPoP error="use_dpop_nonce", algs="ES256""#),
        );
        assert!(asks_for_nonce(&h));
    }
}
