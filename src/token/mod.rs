//! An access token with its deadlines, and the lenient-but-sound reading of a token response;
//! `cache` keeps it (in-process single flight), `endpoint` fetches it, `refresh` refreshes it
//! off the callers' threads.

pub mod assertion;
pub mod cache;
pub mod credential_file;
pub mod discovery;
pub mod endpoint;
pub mod grant;
pub mod refresh;
pub mod settings;
pub mod shared;
pub mod snapshot;
pub mod token_file;

pub use self::settings::EndpointSettings;
use crate::error::{Code, Error, Result};
use crate::http::header::HeaderValue;
use serde_json::Value;
use std::time::{Duration, Instant};

/// Refused above this size: a token response is a few KiB at most.
pub(crate) const MAX_TOKEN_RESPONSE_BYTES: usize = 1 << 20;

/// Lifetimes above this are clamped, so deadline arithmetic can never overflow.
const MAX_LIFETIME: Duration = Duration::from_secs(365 * 86_400);

pub struct Token {
    value: Box<str>,
    /// `Bearer <value>` (or `DPoP <value>`), built once and marked sensitive so it is never
    /// logged.
    bearer: HeaderValue,
    /// Issued as `token_type=DPoP`: bound to the session's DPoP key.
    dpop: bool,
    /// A DPoP proof's `ath` (base64url SHA-256 of the value), computed on first use.
    ath: std::sync::OnceLock<Box<str>>,
    /// From here on the token counts as expired and one caller refreshes it.
    pub refresh_at: Instant,
    /// After this the token is not used at all.
    pub expires_at: Instant,
}

impl Token {
    /// `obtained` is taken before the request was sent, so network time shortens the lifetime
    /// rather than stretching it. The skew is capped at half the lifetime so that a short-lived
    /// token is not refetched on every call.
    pub fn new(
        value: String,
        lifetime: Duration,
        skew: Duration,
        obtained: Instant,
    ) -> Result<Token> {
        // RFC 6750 §2.1: a bearer token is visible ASCII (b64token, in practice also other
        // printable characters). Anything else (0x80-0xFF passes HeaderValue) is refused here,
        // so such a token is never cached and never sent.
        if let Some(at) = value.bytes().position(|b| !b.is_ascii_graphic()) {
            return Err(Error::new(
                Code::CLOUDAUTH_ERR_BAD_TOKEN_RESPONSE,
                format!(
                    "access_token holds a character that is not visible ASCII (at byte {at}), \
                     so it cannot be a bearer token (RFC 6750)"
                ),
            ));
        }
        let mut bearer = HeaderValue::try_from(format!("Bearer {value}")).map_err(|_| {
            Error::new(
                Code::CLOUDAUTH_ERR_BAD_TOKEN_RESPONSE,
                "access_token holds characters not allowed in an HTTP header",
            )
        })?;
        bearer.set_sensitive(true);
        let lifetime = lifetime.min(MAX_LIFETIME);
        let skew = skew.min(lifetime / 2);
        Ok(Token {
            value: value.into_boxed_str(),
            bearer,
            dpop: false,
            ath: std::sync::OnceLock::new(),
            refresh_at: obtained + (lifetime - skew),
            expires_at: obtained + lifetime,
        })
    }

    /// A token known by its remaining times, e.g. read back from a shared cache: due for
    /// refresh `refresh_in` from now, unusable `expires_in` from now.
    pub fn from_remaining(
        value: String,
        refresh_in: Duration,
        expires_in: Duration,
    ) -> Result<Token> {
        let now = Instant::now();
        let expires_in = expires_in.min(MAX_LIFETIME);
        let mut token = Token::new(value, expires_in, Duration::ZERO, now)?;
        token.refresh_at = now + refresh_in.min(expires_in);
        Ok(token)
    }

    pub fn value(&self) -> &str {
        &self.value
    }

    /// The Authorization header value: `Bearer <token>`, or `DPoP <token>`.
    pub fn bearer(&self) -> &HeaderValue {
        &self.bearer
    }

    /// Marks a DPoP-bound token: it is sent as `Authorization: DPoP <token>` (RFC 9449 §7.1).
    pub fn use_dpop_scheme(&mut self) {
        let mut value = HeaderValue::try_from(format!("DPoP {}", self.value))
            .expect("the value was already a valid header");
        value.set_sensitive(true);
        self.bearer = value;
        self.dpop = true;
    }

    pub fn is_dpop(&self) -> bool {
        self.dpop
    }

    /// `ath` for DPoP proofs that carry this token.
    pub fn ath(&self) -> &str {
        self.ath.get_or_init(|| {
            let hash = ring::digest::digest(&ring::digest::SHA256, self.value.as_bytes());
            crate::jose::b64url(hash.as_ref()).into_boxed_str()
        })
    }
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Token")
            .field("value", &"***")
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

/// What a successful token response carries. Its Debug output hides the token.
#[derive(PartialEq)]
pub struct Grant {
    pub access_token: String,
    pub expires_in: Duration,
    /// `refresh_in`, when the server sends one: refresh after this long.
    pub refresh_in: Option<Duration>,
    /// `token_type` is DPoP (RFC 9449 §5); the endpoint accepts that only with `dpop=true`.
    pub dpop: bool,
}

impl std::fmt::Debug for Grant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Grant")
            .field("access_token", &"***")
            .field("expires_in", &self.expires_in)
            .field("refresh_in", &self.refresh_in)
            .field("dpop", &self.dpop)
            .finish()
    }
}

/// Reads a 200 answer of the token endpoint (RFC 6749 §5.1). Numeric strings, floats and a
/// lowercase `bearer` are accepted; an `error` field makes it a refusal even with status 200.
pub fn parse_grant(body: &[u8], default_expires_in: Duration) -> Result<Grant> {
    let bad = |why: String| Error::new(Code::CLOUDAUTH_ERR_BAD_TOKEN_RESPONSE, why);
    let json: Value =
        serde_json::from_slice(body).map_err(|e| bad(format!("the body is not JSON ({e})")))?;
    let obj = json
        .as_object()
        .ok_or_else(|| bad("the body is JSON but not an object".into()))?;
    if obj.contains_key("error") {
        return Err(Error::new(
            Code::CLOUDAUTH_ERR_AUTH_REJECTED,
            oauth_error_text(&json),
        ));
    }
    let access_token = match obj.get("access_token") {
        Some(Value::String(s)) if !s.is_empty() => s.clone(),
        Some(Value::String(_)) => return Err(bad("access_token is empty".into())),
        Some(_) => return Err(bad("access_token is not a string".into())),
        None => return Err(bad("there is no access_token".into())),
    };
    let mut dpop = false;
    match obj.get("token_type") {
        None | Some(Value::Null) => {}
        Some(Value::String(t)) if t.eq_ignore_ascii_case("bearer") => {}
        Some(Value::String(t)) if t.eq_ignore_ascii_case("dpop") => dpop = true,
        Some(other) => {
            return Err(bad(format!(
                "token_type is {}, not Bearer",
                printable(&other.to_string())
            )))
        }
    }
    let expires_in = match obj.get("expires_in") {
        None | Some(Value::Null) => default_expires_in,
        Some(v) => seconds(v).ok_or_else(|| {
            bad(format!(
                "expires_in is {}, not a positive number of seconds",
                printable(&v.to_string())
            ))
        })?,
    };
    // A malformed refresh_in is ignored: it is a hint, and expires_in still bounds the token.
    let refresh_in = obj.get("refresh_in").and_then(seconds);
    Ok(Grant {
        access_token,
        expires_in,
        refresh_in,
        dpop,
    })
}

fn seconds(v: &Value) -> Option<Duration> {
    let n = match v {
        Value::Number(n) => n.as_f64()?,
        Value::String(s) => s.trim().parse::<f64>().ok()?,
        _ => return None,
    };
    let d = (n.is_finite() && n > 0.0)
        .then(|| Duration::from_secs_f64(n.min(MAX_LIFETIME.as_secs_f64())))?;
    (!d.is_zero()).then_some(d) // 1e-300 is positive but rounds to an already-expired token
}

/// `error=<code>: <description>` from an RFC 6749 §5.2 body, or a note that there was none.
pub fn oauth_error_text(json: &Value) -> String {
    let field = |k: &str| json.get(k).and_then(Value::as_str).map(printable);
    match (field("error"), field("error_description")) {
        (Some(e), Some(d)) => format!("error={e}: {d}"),
        (Some(e), None) => format!("error={e}"),
        _ => "no OAuth error in the body".into(),
    }
}

/// Server text in a message, one line but whole: the endpoint scrubs credentials out of the
/// complete text and only then shortens it (a cut could leave half a secret behind).
pub fn printable(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: Duration = Duration::from_secs(3600);

    fn parse(body: &str) -> Result<Grant> {
        parse_grant(body.as_bytes(), HOUR)
    }

    #[test]
    fn accepts_the_lenient_forms() {
        let g = parse(r#"{"access_token":"a","expires_in":"120","token_type":"bearer"}"#).unwrap();
        assert_eq!(g.expires_in, Duration::from_secs(120));
        let g = parse(r#"{"access_token":"a","expires_in":59.5,"token_type":"Bearer"}"#).unwrap();
        assert_eq!(g.expires_in, Duration::from_millis(59_500));
        let g = parse(r#"{"access_token":"a"}"#).unwrap();
        assert_eq!(g.expires_in, HOUR);
    }

    #[test]
    fn refuses_what_cannot_be_used() {
        for body in [
            "not json",
            "[1]",
            r#"{"expires_in":3600}"#,
            r#"{"access_token":""}"#,
            r#"{"access_token":7}"#,
            r#"{"access_token":"a","expires_in":-1}"#,
            r#"{"access_token":"a","expires_in":0}"#,
            r#"{"access_token":"a","expires_in":1e-300}"#,
            r#"{"access_token":"a","expires_in":"soon"}"#,
            r#"{"access_token":"a","expires_in":{}}"#,
            r#"{"access_token":"a","token_type":"mac"}"#,
        ] {
            let err = parse(body).unwrap_err();
            assert_eq!(err.code, Code::CLOUDAUTH_ERR_BAD_TOKEN_RESPONSE, "{body}");
        }
    }

    #[test]
    fn an_error_field_is_a_refusal_even_with_200() {
        let err = parse(r#"{"access_token":"a","error":"invalid_scope","error_description":"no"}"#)
            .unwrap_err();
        assert_eq!(err.code, Code::CLOUDAUTH_ERR_AUTH_REJECTED);
        assert_eq!(err.message, "error=invalid_scope: no");
    }

    #[test]
    fn skew_is_capped_at_half_the_lifetime() {
        let t0 = Instant::now();
        let t = Token::new(
            "x".into(),
            Duration::from_secs(120),
            Duration::from_secs(600),
            t0,
        )
        .unwrap();
        assert_eq!(t.refresh_at - t0, Duration::from_secs(60));
        assert_eq!(t.expires_at - t0, Duration::from_secs(120));
        let t = Token::new("x".into(), HOUR, Duration::from_secs(60), t0).unwrap();
        assert_eq!(t.refresh_at - t0, Duration::from_secs(3540));
    }

    #[test]
    fn token_debug_hides_the_value() {
        let t = Token::new("eyJsecret".into(), HOUR, Duration::ZERO, Instant::now()).unwrap();
        assert!(!format!("{t:?}").contains("eyJ"));
        assert!(Token::new("a\nb".into(), HOUR, Duration::ZERO, Instant::now()).is_err());
    }

    #[test]
    fn only_visible_ascii_tokens_are_accepted() {
        for bad in [
            "caf\u{e9}",
            "a b",
            "tab\there",
            "\u{7f}",
            "x\u{80}y",
            "\u{1F600}",
        ] {
            let err = Token::new(bad.into(), HOUR, Duration::ZERO, Instant::now()).unwrap_err();
            assert_eq!(err.code, Code::CLOUDAUTH_ERR_BAD_TOKEN_RESPONSE, "{bad:?}");
        }
        let ok = "eyJhbGciOi.J-_~+/=.x:!#$%&'()*,;<>?@[]^`{|}";
        assert!(Token::new(ok.into(), HOUR, Duration::ZERO, Instant::now()).is_ok());
    }

    #[test]
    fn mutated_responses_never_panic_and_what_passes_is_usable() {
        let seeds = [
            r#"{"access_token":"eyJ.a.b","expires_in":3600,"token_type":"Bearer"}"#,
            r#"{"access_token":"t","expires_in":"59.5","token_type":"bearer","scope":"x"}"#,
            r#"{"error":"invalid_client","error_description":"bad"}"#,
        ];
        let mut rng = fastrand::Rng::with_seed(20261127);
        for i in 0..20_000 {
            let mut bytes = seeds[i % seeds.len()].as_bytes().to_vec();
            for _ in 0..rng.usize(1..6) {
                if bytes.is_empty() {
                    break;
                }
                let at = rng.usize(..bytes.len());
                match rng.u8(..3) {
                    0 => bytes[at] = rng.u8(..),
                    1 => bytes.insert(at, rng.u8(..)),
                    _ => drop(bytes.remove(at)),
                }
            }
            if let Ok(grant) = parse_grant(&bytes, HOUR) {
                assert!(!grant.access_token.is_empty());
                assert!(grant.expires_in > Duration::ZERO);
                // Building the token must not panic either (it may refuse header-unsafe bytes).
                let _ = Token::new(
                    grant.access_token,
                    grant.expires_in,
                    Duration::from_secs(60),
                    Instant::now(),
                );
            }
        }
    }
}
