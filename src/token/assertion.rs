//! Client assertions (RFC 7523 §2.2, RFC 7521 §4.2): a JWT that authenticates the client at
//! the token endpoint in place of a secret in the body. private_key_jwt signs it with
//! `client_key_file` (read at every token request, so replacing the file rotates the key),
//! client_secret_jwt with the client secret (HS256). Each token request gets a fresh one.

use crate::error::{Error, Result};
use crate::jose::{jwk, random_id, unix_now, Alg, SigningKey};
use crate::oauth::AuthMethod;
use crate::secret::Secret;
use crate::token::EndpointSettings;
use serde_json::json;

/// `exp` is this far after `iat`: short, since an assertion seen in transit could be replayed
/// until then, and well inside the 5 minutes servers allow.
const LIFETIME_S: u64 = 120;

/// How a session's assertions are made (the key material itself is read per request).
#[derive(Clone, Debug)]
pub struct AssertionConfig {
    key_id: Option<String>,
    alg: Option<Alg>,
    key_file: Option<String>,
    cert_file: Option<String>,
}

impl AssertionConfig {
    /// The settings for the JWT auth methods (no I/O); `None` for the others.
    pub fn settings(cfg: &EndpointSettings) -> Option<AssertionConfig> {
        matches!(
            cfg.auth_method,
            AuthMethod::PrivateKeyJwt | AuthMethod::ClientSecretJwt
        )
        .then(|| AssertionConfig {
            key_id: cfg.client_key_id.clone(),
            alg: cfg.client_assertion_alg,
            key_file: cfg.client_key_file.clone(),
            cert_file: cfg.client_cert_file.clone(),
        })
    }

    /// Checks the settings now (the key parses, fits the algorithm and matches the
    /// certificate), so a bad file is found at session_new.
    pub fn check(cfg: &EndpointSettings) -> Result<()> {
        let Some(this) = AssertionConfig::settings(cfg) else {
            return Ok(());
        };
        if cfg.auth_method == AuthMethod::ClientSecretJwt {
            if this.alg.is_some_and(|a| a != Alg::HS256) {
                return Err(Error::invalid(
                    "client_assertion_alg: client_secret_jwt signs with HS256 only",
                ));
            }
            return Ok(());
        }
        let Some(path) = &this.key_file else {
            return Err(Error::invalid(
                "client_key_file is not set; auth_method=private_key_jwt signs with it",
            ));
        };
        if this.alg == Some(Alg::HS256) {
            return Err(Error::invalid(
                "client_assertion_alg: HS256 is client_secret_jwt's; private_key_jwt signs \
                 with RS256, PS256, ES256, ES384 or EdDSA",
            ));
        }
        let pem = crate::jose::key::read_secret_file("client_key_file", path)?;
        this.private_key_signer(&pem).map(drop)
    }

    /// The key and header for one token request. `secret` is the client secret under
    /// client_secret_jwt and the key file's text under private_key_jwt.
    pub fn signer(&self, method: AuthMethod, secret: &Secret) -> Result<Signer> {
        match method {
            AuthMethod::ClientSecretJwt => Ok(Signer {
                header: header(Alg::HS256, self.key_id.as_deref(), None),
                key: SigningKey::hmac(secret.expose().as_bytes()),
            }),
            _ => self.private_key_signer(secret.expose().as_bytes()),
        }
    }

    fn private_key_signer(&self, pem: &[u8]) -> Result<Signer> {
        let path = self.key_file.as_deref().unwrap_or("");
        let key = SigningKey::from_pem("client_key_file", path, pem, self.alg)?;
        let x5t = match &self.cert_file {
            Some(cert) => Some(jwk::cert_thumbprint("client_cert_file", cert, &key)?),
            None => None,
        };
        Ok(Signer {
            header: header(key.alg(), self.key_id.as_deref(), x5t.as_deref()),
            key,
        })
    }
}

/// A loaded key and the JWS header it signs under, for one token request.
pub struct Signer {
    key: SigningKey,
    header: String,
}

impl Signer {
    /// Signs with `key` under a header naming `kid` (the JWT-bearer grant's assertions).
    pub fn new(key: SigningKey, kid: Option<&str>) -> Signer {
        Signer {
            header: header(key.alg(), kid, None),
            key,
        }
    }

    /// A fresh assertion: `iss` = `sub` = the client id, `aud` = `audience`
    /// (`client_assertion_aud`: the token endpoint URL unless set), a unique `jti`, and an
    /// `exp` [`LIFETIME_S`] after `iat`.
    pub fn assertion(&self, client_id: &str, audience: &str) -> Secret {
        let now = unix_now();
        self.sign(&json!({
            "iss": client_id,
            "sub": client_id,
            "aud": audience,
            "jti": random_id(),
            "iat": now,
            "exp": now + LIFETIME_S,
        }))
    }

    /// A compact JWS of `claims`.
    pub fn sign(&self, claims: &serde_json::Value) -> Secret {
        Secret::from(self.key.sign_jws(&self.header, &claims.to_string()))
    }
}

fn header(alg: Alg, kid: Option<&str>, x5t: Option<&str>) -> String {
    let mut h = json!({ "alg": alg.name(), "typ": "JWT" });
    if let Some(kid) = kid {
        h["kid"] = kid.into();
    }
    if let Some(x5t) = x5t {
        h["x5t#S256"] = x5t.into();
    }
    h.to_string()
}
