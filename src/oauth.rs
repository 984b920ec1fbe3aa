//! The OAuth 2 vocabulary that the configuration sets and the token layer acts on: how the
//! client authenticates, which grant a token request uses and its workload-identity keys, and
//! where tokens are shared. A leaf: `config` parses into these types, `token` reads them, and
//! neither imports the other.

use crate::error::{quote_prefix, Error, Result};

pub const DEFAULT_TOKEN_URL: &str = "https://api.aspose.cloud/connect/token";
pub const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
pub const JWT_BEARER: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
pub const TOKEN_EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
pub const TYPE_JWT: &str = "urn:ietf:params:oauth:token-type:jwt";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuthMethod {
    /// id and secret in the form body (RFC 6749 §2.3.1, the Aspose default).
    ClientSecretPost,
    /// HTTP Basic with the form-encoded id and secret.
    ClientSecretBasic,
    /// A JWT signed with `client_key_file` (RFC 7523 §2.2).
    PrivateKeyJwt,
    /// A JWT signed HS256 with the client secret (RFC 7523 §2.2).
    ClientSecretJwt,
    /// Mutual TLS with a CA-issued certificate (RFC 8705 §2.1): no secret, the TLS handshake
    /// presents `client_cert_file`.
    TlsClientAuth,
    /// Mutual TLS with a self-signed certificate the server knows (RFC 8705 §2.2).
    SelfSignedTlsClientAuth,
    /// A JWT the platform writes to `client_assertion_file` (a federated credential), read at
    /// every attempt; no secret (src/token/grant.rs).
    ClientAssertion,
    /// No client authentication (the JWT-bearer grant's assertion, or a public client).
    None,
}

impl AuthMethod {
    pub fn name(self) -> &'static str {
        match self {
            AuthMethod::ClientSecretPost => "client_secret_post",
            AuthMethod::ClientSecretBasic => "client_secret_basic",
            AuthMethod::PrivateKeyJwt => "private_key_jwt",
            AuthMethod::ClientSecretJwt => "client_secret_jwt",
            AuthMethod::TlsClientAuth => "tls_client_auth",
            AuthMethod::SelfSignedTlsClientAuth => "self_signed_tls_client_auth",
            AuthMethod::ClientAssertion => "client_assertion",
            AuthMethod::None => "none",
        }
    }

    /// Whether the token request authenticates with a TLS client certificate (RFC 8705), so
    /// discovery's `mtls_endpoint_aliases` apply.
    pub fn presents_certificate(self) -> bool {
        matches!(
            self,
            AuthMethod::TlsClientAuth | AuthMethod::SelfSignedTlsClientAuth
        )
    }
}

/// Where tokens are kept besides the session's memory (README.md, "Shared token caches").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenCacheKind {
    Memory,
    /// Shared by this user's processes on this host, in `token_cache_dir`.
    File,
    /// Shared by every host that reaches `redis_url`.
    Redis,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum GrantKind {
    #[default]
    ClientCredentials,
    JwtBearer,
    TokenExchange,
}

impl GrantKind {
    pub fn form_value(self) -> &'static str {
        match self {
            GrantKind::ClientCredentials => "client_credentials",
            GrantKind::JwtBearer => JWT_BEARER,
            GrantKind::TokenExchange => TOKEN_EXCHANGE,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            GrantKind::ClientCredentials => "client_credentials",
            GrantKind::JwtBearer => "jwt_bearer",
            GrantKind::TokenExchange => "token_exchange",
        }
    }
}

/// `client_assertion_aud`: the `aud` of the assertions cloudauth signs.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Audience {
    /// The token endpoint URL actually used (configured or discovered).
    #[default]
    TokenEndpoint,
    /// The authorization server's issuer identifier (`issuer`), as draft-ietf-oauth-rfc7523bis
    /// and FAPI 2 ask.
    Issuer,
    Explicit(String),
}

/// The workload-identity keys as set (`Config::workload`; src/token/grant.rs uses them).
#[derive(Clone, Debug, Default)]
pub struct WorkloadSettings {
    pub grant: GrantKind,
    pub client_assertion_file: Option<String>,
    pub client_assertion_type: Option<String>,
    pub client_assertion_aud: Audience,
    pub assertion_issuer: Option<String>,
    pub assertion_subject: Option<String>,
    pub scope_in_assertion: Option<bool>,
    pub credentials_file: Option<String>,
    pub subject_token_file: Option<String>,
    pub subject_token_type: Option<String>,
    pub requested_token_type: Option<String>,
    pub actor_token_file: Option<String>,
    pub actor_token_type: Option<String>,
    pub token_cache_key_file: Option<String>,
}

impl WorkloadSettings {
    /// The keys these settings take (`cloudauth_config_set`, `CLOUDAUTH_*`).
    pub const KEYS: &'static [&'static str] = &[
        "grant_type",
        "client_assertion_file",
        "client_assertion_type",
        "client_assertion_aud",
        "assertion_issuer",
        "assertion_subject",
        "scope_in_assertion",
        "credentials_file",
        "subject_token_file",
        "subject_token_type",
        "requested_token_type",
        "actor_token_file",
        "actor_token_type",
        "token_cache_key_file",
    ];

    pub fn has_key(key: &str) -> bool {
        Self::KEYS.contains(&key)
    }

    /// One key; an empty value unsets it (back to its default).
    pub fn set(&mut self, key: &str, value: &str) -> Result<()> {
        let optional = |v: &str| -> Result<Option<String>> {
            if v.bytes().any(|b| b.is_ascii_control()) {
                return Err(Error::invalid(format!(
                    "{key} must not contain control characters"
                )));
            }
            Ok((!v.is_empty()).then(|| v.to_owned()))
        };
        match key {
            "grant_type" => {
                self.grant = match value {
                    "" | "client_credentials" => GrantKind::ClientCredentials,
                    "jwt_bearer" | JWT_BEARER => GrantKind::JwtBearer,
                    "token_exchange" | TOKEN_EXCHANGE => GrantKind::TokenExchange,
                    _ => {
                        return Err(Error::invalid(format!(
                            "grant_type: '{}' is not valid; expected client_credentials, \
                             jwt_bearer or token_exchange",
                            quote_prefix(value, 40)
                        )))
                    }
                }
            }
            "client_assertion_file" => self.client_assertion_file = optional(value)?,
            "client_assertion_type" => self.client_assertion_type = optional(value)?,
            "client_assertion_aud" => {
                self.client_assertion_aud = match value {
                    "" | "token_endpoint" => Audience::TokenEndpoint,
                    "issuer" => Audience::Issuer,
                    _ => Audience::Explicit(optional(value)?.unwrap_or_default()),
                }
            }
            "assertion_issuer" => self.assertion_issuer = optional(value)?,
            "assertion_subject" => self.assertion_subject = optional(value)?,
            "scope_in_assertion" => {
                self.scope_in_assertion = match value.to_ascii_lowercase().as_str() {
                    "" => None,
                    "true" | "1" | "yes" | "on" => Some(true),
                    "false" | "0" | "no" | "off" => Some(false),
                    _ => {
                        return Err(Error::invalid(format!(
                            "scope_in_assertion: '{}' is not valid; expected true or false",
                            quote_prefix(value, 10)
                        )))
                    }
                }
            }
            "credentials_file" => self.credentials_file = optional(value)?,
            "subject_token_file" => self.subject_token_file = optional(value)?,
            "subject_token_type" => self.subject_token_type = optional(value)?,
            "requested_token_type" => self.requested_token_type = optional(value)?,
            "actor_token_file" => self.actor_token_file = optional(value)?,
            "actor_token_type" => self.actor_token_type = optional(value)?,
            "token_cache_key_file" => self.token_cache_key_file = optional(value)?,
            _ => return Err(Error::invalid(format!("{key}: not a workload key"))),
        }
        Ok(())
    }

    pub fn client_assertion_type(&self) -> &str {
        self.client_assertion_type
            .as_deref()
            .unwrap_or(ASSERTION_TYPE)
    }

    pub fn subject_token_type(&self) -> &str {
        self.subject_token_type.as_deref().unwrap_or(TYPE_JWT)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grant_type_values() {
        let mut s = WorkloadSettings::default();
        s.set("grant_type", JWT_BEARER).unwrap();
        assert_eq!(s.grant, GrantKind::JwtBearer);
        s.set("grant_type", "token_exchange").unwrap();
        assert_eq!(s.grant, GrantKind::TokenExchange);
        let err = s.set("grant_type", "password").unwrap_err();
        assert!(
            err.message.starts_with("grant_type: 'password'"),
            "{}",
            err.message
        );
        let err = s.set("scope_in_assertion", "maybe").unwrap_err();
        assert!(
            err.message.starts_with("scope_in_assertion"),
            "{}",
            err.message
        );
    }
}
