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

    /// A proof for one request: `htm`, `htu`, `iat`, a unique `jti`, `ath` (the hash of the
    /// token it goes with, if any), and the nonce last learned from `url`'s origin. `htu` is
    /// [`htu`]: no user info, query or fragment.
    pub fn proof(&self, method: &str, url: &Url, ath: Option<&str>) -> HeaderValue {
        let htu = htu(url);
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

/// A proof's `htu` for a request to `url` (RFC 9449 §4.2): the URL without query and
/// fragment, and without user info (`user:pass@`), which is a credential of its own and no
/// part of the resource a proof names: a proof is a signed, loggable header.
pub fn htu(url: &Url) -> Url {
    let mut htu = url.clone();
    htu.set_query(None);
    htu.set_fragment(None);
    // Fails only for URLs that cannot have user info (no host), which then have none.
    let _ = htu.set_username("");
    let _ = htu.set_password(None);
    htu
}

/// Whether an API 401 asks for a nonce: a `DPoP` challenge with `error="use_dpop_nonce"`
/// (RFC 9449 §9) in any `WWW-Authenticate` field, also after other challenges in the same
/// field (`Bearer realm="api", DPoP error="use_dpop_nonce"`, RFC 9110 §11.6.1).
pub fn asks_for_nonce(headers: &HeaderMap) -> bool {
    // Bytes above 0x7F (obs-text, allowed in quoted strings) do not hide what follows them:
    // found by fuzz/www_authenticate (`realm="…é…", DPoP error=...` was not recognised).
    headers.get_all(WWW_AUTHENTICATE).iter().any(|v| {
        challenges(&String::from_utf8_lossy(v.as_bytes()))
            .iter()
            .any(|c| {
                c.scheme.eq_ignore_ascii_case("dpop")
                    && c.params
                        .iter()
                        .any(|(k, v)| k.eq_ignore_ascii_case("error") && v == "use_dpop_nonce")
            })
    })
}

/// One challenge of a `WWW-Authenticate` field: its scheme and its `name=value` parameters
/// (quoted values unescaped; a token68 is kept as a parameter with an empty name).
#[derive(PartialEq, Eq)]
pub struct Challenge {
    pub scheme: String,
    pub params: Vec<(String, String)>,
}

/// Fields above this are not read (a challenge list is a few hundred bytes).
const MAX_CHALLENGE_FIELD: usize = 8 << 10;

/// The challenges of one `WWW-Authenticate` field (RFC 9110 §11.6.1):
/// `challenge = scheme [ 1*SP ( token68 / #(name BWS "=" BWS (token / quoted-string)) ) ]`,
/// comma-separated, so an element that starts with a token and a space (not `=`) starts a
/// new challenge. Lenient: the first element that does not parse ends the list, and the
/// challenges before it stand.
pub fn challenges(field: &str) -> Vec<Challenge> {
    let mut out: Vec<Challenge> = Vec::new();
    if field.len() > MAX_CHALLENGE_FIELD {
        return out;
    }
    for element in split_list(field) {
        let element = element.trim_matches([' ', '\t']);
        if element.is_empty() {
            continue; // RFC 9110 §5.6.1: empty list elements are allowed
        }
        let name_end = element
            .find(|c: char| !c.is_ascii() || !is_tchar(c as u8))
            .unwrap_or(element.len());
        if name_end == 0 {
            return out;
        }
        let (name, rest) = element.split_at(name_end);
        let after = rest.trim_start_matches([' ', '\t']);
        if let Some(raw) = after.strip_prefix('=') {
            // A parameter of the current challenge.
            let (Some(current), Some(value)) = (out.last_mut(), param_value(raw)) else {
                return out;
            };
            current.params.push((name.to_owned(), value));
            continue;
        }
        if !rest.is_empty() && after.len() == rest.len() {
            return out; // the scheme runs into something that is not a space
        }
        let mut challenge = Challenge {
            scheme: name.to_owned(),
            params: Vec::new(),
        };
        if !after.is_empty() {
            match after.split_once('=') {
                Some((n, v))
                    if !n.trim_end().is_empty()
                        && n.trim_end().bytes().all(is_tchar)
                        && !is_token68(after) =>
                {
                    let Some(value) = param_value(v) else {
                        return out;
                    };
                    challenge.params.push((n.trim_end().to_owned(), value));
                }
                _ if is_token68(after) => challenge.params.push((String::new(), after.to_owned())),
                _ => return out,
            }
        }
        out.push(challenge);
    }
    out
}

/// The elements of a comma-separated list; commas inside quoted strings do not split.
fn split_list(field: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let (mut start, mut quoted, mut escaped) = (0, false, false);
    for (i, c) in field.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            ',' if !quoted => {
                parts.push(&field[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&field[start..]);
    parts
}

/// A parameter's value after its `=`: a token or a whole quoted string (escapes undone);
/// `None` for anything else.
fn param_value(v: &str) -> Option<String> {
    let v = v.trim_matches([' ', '\t']);
    let Some(quoted) = v.strip_prefix('"') else {
        return (!v.is_empty() && v.bytes().all(is_tchar)).then(|| v.to_owned());
    };
    let mut value = String::new();
    let mut chars = quoted.chars();
    while let Some(c) = chars.next() {
        match c {
            '"' => return chars.as_str().is_empty().then_some(value),
            '\\' => value.push(chars.next()?),
            c => value.push(c),
        }
    }
    None // unterminated
}

/// RFC 9110 §11.2 token68: `1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="`.
fn is_token68(v: &str) -> bool {
    let body = v.trim_end_matches('=');
    !body.is_empty()
        && body
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || b"-._~+/".contains(&c))
}

/// RFC 9110 §5.6.2 tchar.
fn is_tchar(c: u8) -> bool {
    c.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&c)
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

    fn asks(fields: &[&str]) -> bool {
        let mut h = HeaderMap::new();
        for f in fields {
            h.append(WWW_AUTHENTICATE, HeaderValue::from_str(f).unwrap());
        }
        asks_for_nonce(&h)
    }

    #[test]
    fn a_dpop_nonce_challenge_after_a_bearer_one_is_recognised() {
        // Issue 26: one field, Bearer first (RFC 9110 §11.6.1 allows any order).
        assert!(asks(&[
            r#"Bearer realm="api", DPoP error="use_dpop_nonce""#
        ]));
        assert!(asks(&[
            r#"Bearer realm="a, b", error="invalid_token", DPoP algs="ES256 PS256", error="use_dpop_nonce""#
        ]));
        assert!(asks(&[r#"Bearer abc123==, dpop error=use_dpop_nonce"#]));
        // Two fields, the DPoP one second.
        assert!(asks(&[
            r#"Bearer realm="api""#,
            r#"DPoP error="use_dpop_nonce""#
        ]));
        // The Bearer challenge's error, or the words in a description, are not the DPoP ask.
        assert!(!asks(&[
            r#"Bearer error="use_dpop_nonce", DPoP algs="ES256""#
        ]));
        assert!(!asks(&[
            r#"DPoP error="invalid_token", error_description="not use_dpop_nonce""#
        ]));
        assert!(!asks(&[r#"DPoPX error="use_dpop_nonce""#]));
        // A byte above 0x7F in an earlier quoted string (fuzz/www_authenticate).
        let mut h = HeaderMap::new();
        let field = "Bearer realm=\"caf\u{e9}\", DPoP error=\"use_dpop_nonce\"";
        h.append(
            WWW_AUTHENTICATE,
            HeaderValue::from_bytes(field.as_bytes()).unwrap(),
        );
        assert!(asks_for_nonce(&h));
    }

    #[test]
    fn challenges_parse_params_token68_and_stop_at_garbage() {
        let c = challenges(
            r#"Newauth realm="apps", type=1, title="Login to \"apps\"", Basic realm="simple""#,
        );
        assert_eq!(c.len(), 2);
        assert_eq!(c[0].scheme, "Newauth");
        let p: Vec<(&str, &str)> = c[0]
            .params
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        assert_eq!(
            p,
            [
                ("realm", "apps"),
                ("type", "1"),
                ("title", "Login to \"apps\"")
            ]
        );
        assert_eq!(c[1].scheme, "Basic");
        let c = challenges("Negotiate a87421000492aa874209af8bc028==");
        assert_eq!(
            c[0].params,
            [(String::new(), "a87421000492aa874209af8bc028==".to_owned())]
        );
        // Garbage ends the list; what came before stands.
        let c = challenges(r#"DPoP error="use_dpop_nonce", @@@, Basic"#);
        assert_eq!(c.len(), 1);
        assert!(challenges(r#"realm="x""#).is_empty());
        assert!(challenges(r#"DPoP error="unterminated"#).is_empty());
    }

    #[test]
    fn htu_never_carries_user_info() {
        let d = dpop();
        let url = Url::parse("https://user:pass@api.example/v1/x?q=1#f").unwrap();
        let c = claims(&d.proof("GET", &url, None));
        assert_eq!(c["htu"], "https://api.example/v1/x");
        let url = Url::parse("https://user@api.example/").unwrap();
        assert_eq!(htu(&url).as_str(), "https://api.example/");
    }
}
