//! Workload identity: tokens with no stored secret. The grant a token request uses
//! (`grant_type`: client credentials, the JWT-bearer grant of RFC 7523 §2.1, token exchange of
//! RFC 8693) and what each attempt of it carries that is signed or read anew: the JWT-bearer
//! assertion, the subject and actor tokens, and a federated client assertion
//! (`auth_method=client_assertion`: the platform's JWT from `client_assertion_file`).
//!
//! The endpoint asks this module for the grant's fields (`Grant`), once per fetch for the key
//! material (`Grant::prepare`) and once per attempt for what is signed or read
//! (`Prepared::append`): a retry never resends an old assertion and always sends the files'
//! current content.

use crate::error::{quote_prefix, Code, Error, Result};
use crate::jose::{random_id, unix_now, SigningKey};
use crate::oauth::{Audience, AuthMethod, GrantKind, WorkloadSettings, TYPE_JWT};
use crate::secret::{Scrubber, Secret};
use crate::token::assertion::Signer;
use crate::token::credential_file::ServiceAccount;
use crate::token::token_file::TokenFile;
use crate::token::EndpointSettings;
use serde_json::json;
use std::sync::Arc;

pub const TYPE_ACCESS_TOKEN: &str = "urn:ietf:params:oauth:token-type:access_token";
/// The JWT-bearer grant's assertions live this long: within the hour RFC 7523 servers (Google)
/// allow, short enough that one seen in transit is soon useless.
const JWT_BEARER_LIFETIME_S: u64 = 300;

/// Whether a token of this type is a JWT (so its file must hold one): the JWT and ID-token
/// types, and the JWT client-assertion types (jwt-bearer, jwt-spiffe).
fn holds_jwt(token_type: &str) -> bool {
    token_type == TYPE_JWT
        || token_type == "urn:ietf:params:oauth:token-type:id_token"
        || token_type.starts_with("urn:ietf:params:oauth:client-assertion-type:jwt")
}

/// The settings as a session uses them: the keys checked for fitting together, and a
/// `credentials_file`'s `client_email` and `token_uri` filled in where `client_id` and
/// `token_url` are not set. (The workload grants' client authentication was defaulted to
/// `none` when the settings were built, src/session.rs.)
pub fn resolve(cfg: &EndpointSettings) -> Result<EndpointSettings> {
    let s = &cfg.workload;
    let mut cfg = cfg.clone();
    check_fit(&cfg)?;
    if let Some(path) = &s.credentials_file {
        let account = ServiceAccount::load(path, cfg.client_assertion_alg)?;
        if cfg.client_id.is_none() {
            cfg.client_id = Some(account.client_email.clone());
        }
        if cfg.token_url.is_none() && cfg.issuer.is_none() {
            cfg.token_url = account.token_uri;
        }
    }
    Ok(cfg)
}

/// Keys that do not fit together are INVALID_ARGUMENT naming the key.
fn check_fit(cfg: &EndpointSettings) -> Result<()> {
    let s = &cfg.workload;
    let method = cfg.auth_method;
    let has_secret = cfg.client_secret.is_some() || cfg.client_secret_file.is_some();
    let only = |key: &str, set: bool, needs: &str| -> Result<()> {
        match set {
            true => Err(Error::invalid(format!(
                "{key} is set, but it needs {needs}"
            ))),
            false => Ok(()),
        }
    };
    let without_exchange = |set: bool| set && s.grant != GrantKind::TokenExchange;
    only(
        "client_assertion_file",
        s.client_assertion_file.is_some() && method != AuthMethod::ClientAssertion,
        "auth_method=client_assertion",
    )?;
    only(
        "client_assertion_type",
        s.client_assertion_type.is_some() && method != AuthMethod::ClientAssertion,
        "auth_method=client_assertion (the assertions cloudauth signs are jwt-bearer)",
    )?;
    for (key, set) in [
        ("subject_token_file", s.subject_token_file.is_some()),
        ("subject_token_type", s.subject_token_type.is_some()),
        ("requested_token_type", s.requested_token_type.is_some()),
        ("actor_token_file", s.actor_token_file.is_some()),
        ("actor_token_type", s.actor_token_type.is_some()),
    ] {
        only(key, without_exchange(set), "grant_type=token_exchange")?;
    }
    for (key, set) in [
        ("credentials_file", s.credentials_file.is_some()),
        ("assertion_issuer", s.assertion_issuer.is_some()),
        ("assertion_subject", s.assertion_subject.is_some()),
        ("scope_in_assertion", s.scope_in_assertion.is_some()),
    ] {
        only(
            key,
            set && s.grant != GrantKind::JwtBearer,
            "grant_type=jwt_bearer",
        )?;
    }
    only(
        "actor_token_type",
        s.actor_token_type.is_some() && s.actor_token_file.is_none(),
        "actor_token_file",
    )?;
    match method {
        AuthMethod::ClientAssertion => {
            if has_secret {
                let key = match cfg.client_secret.is_some() {
                    true => "client_secret",
                    false => "client_secret_file",
                };
                return Err(Error::invalid(format!(
                    "{key} is set, but auth_method=client_assertion sends the platform's \
                     assertion and no secret; unset {key}"
                )));
            }
            let Some(path) = &s.client_assertion_file else {
                return Err(Error::invalid(
                    "client_assertion_file is not set; auth_method=client_assertion sends it",
                ));
            };
            if cfg.client_id.is_none() {
                return Err(Error::invalid("client_id is not set"));
            }
            assertion_file(s, path).read()?;
        }
        AuthMethod::None if has_secret => {
            return Err(Error::invalid(
                "client_secret is set, but auth_method=none sends no client authentication; \
                 unset it or choose a method",
            ));
        }
        _ => {}
    }
    if s.client_assertion_aud == Audience::Issuer && cfg.issuer.is_none() {
        return Err(Error::invalid(
            "client_assertion_aud=issuer needs issuer (the authorization server's issuer \
             identifier)",
        ));
    }
    match s.grant {
        GrantKind::ClientCredentials => {}
        GrantKind::JwtBearer => match (&cfg.client_key_file, &s.credentials_file) {
            (Some(_), Some(_)) => {
                return Err(Error::invalid(
                    "credentials_file and client_key_file are both set; the JWT-bearer grant \
                     signs with one key: set only one",
                ))
            }
            (None, None) => {
                return Err(Error::invalid(
                    "client_key_file is not set (nor credentials_file); grant_type=jwt_bearer \
                     signs its assertion with it",
                ))
            }
            (Some(path), None) => {
                SigningKey::from_file("client_key_file", path, cfg.client_assertion_alg)?;
                if cfg.client_id.is_none() && s.assertion_issuer.is_none() {
                    return Err(Error::invalid(
                        "client_id is not set (nor assertion_issuer); the JWT-bearer \
                         assertion's iss is client_id",
                    ));
                }
            }
            (None, Some(_)) => {} // loaded by `resolve`
        },
        GrantKind::TokenExchange => {
            let Some(path) = &s.subject_token_file else {
                return Err(Error::invalid(
                    "subject_token_file is not set; grant_type=token_exchange sends it",
                ));
            };
            subject_file(s, path).read()?;
            if let Some(path) = &s.actor_token_file {
                actor_file(s, path).read()?;
            }
        }
    }
    Ok(())
}

fn assertion_file(s: &WorkloadSettings, path: &str) -> TokenFile {
    let jwt = holds_jwt(s.client_assertion_type());
    TokenFile::new("client_assertion_file", path, jwt)
}

fn subject_file(s: &WorkloadSettings, path: &str) -> TokenFile {
    TokenFile::new(
        "subject_token_file",
        path,
        holds_jwt(s.subject_token_type()),
    )
}

fn actor_file(s: &WorkloadSettings, path: &str) -> TokenFile {
    let jwt = holds_jwt(s.actor_token_type.as_deref().unwrap_or(TYPE_JWT));
    TokenFile::new("actor_token_file", path, jwt)
}

/// A session's grant: what every token request sends besides the client authentication.
pub struct Grant {
    kind: GrantKind,
    auth_method: AuthMethod,
    audience: Audience,
    issuer: Option<String>,
    client_id: Option<String>,
    assertion_issuer: Option<String>,
    assertion_subject: Option<String>,
    scope: Option<String>,
    scope_in_assertion: bool,
    key_file: Option<String>,
    credentials_file: Option<String>,
    key_id: Option<String>,
    alg: Option<crate::jose::Alg>,
    client_assertion: Option<TokenFile>,
    client_assertion_type: String,
    subject: Option<TokenFile>,
    subject_token_type: String,
    requested_token_type: Option<String>,
    actor: Option<TokenFile>,
    actor_token_type: String,
}

impl Grant {
    /// From a configuration [`resolve`] returned.
    pub fn new(cfg: &EndpointSettings) -> Arc<Grant> {
        let s = &cfg.workload;
        let jwt_bearer = s.grant == GrantKind::JwtBearer;
        Arc::new(Grant {
            kind: s.grant,
            auth_method: cfg.auth_method,
            audience: s.client_assertion_aud.clone(),
            issuer: cfg.issuer.clone(),
            client_id: cfg.client_id.clone(),
            assertion_issuer: s.assertion_issuer.clone(),
            assertion_subject: s.assertion_subject.clone(),
            scope: cfg.scope.clone(),
            // Google's JWT-bearer grant wants scope as a claim (its key files are how it is
            // recognised); RFC 7523 servers otherwise take the form field.
            scope_in_assertion: jwt_bearer
                && s.scope_in_assertion.unwrap_or(s.credentials_file.is_some()),
            key_file: cfg.client_key_file.clone().filter(|_| jwt_bearer),
            credentials_file: s.credentials_file.clone(),
            key_id: cfg.client_key_id.clone(),
            alg: cfg.client_assertion_alg,
            client_assertion: (cfg.auth_method == AuthMethod::ClientAssertion)
                .then(|| {
                    s.client_assertion_file
                        .as_deref()
                        .map(|p| assertion_file(s, p))
                })
                .flatten(),
            client_assertion_type: s.client_assertion_type().to_owned(),
            subject: (s.grant == GrantKind::TokenExchange)
                .then(|| s.subject_token_file.as_deref().map(|p| subject_file(s, p)))
                .flatten(),
            subject_token_type: s.subject_token_type().to_owned(),
            requested_token_type: s.requested_token_type.clone(),
            actor: s.actor_token_file.as_deref().map(|p| actor_file(s, p)),
            actor_token_type: s.actor_token_type.clone().unwrap_or(TYPE_JWT.into()),
        })
    }

    pub fn kind(&self) -> GrantKind {
        self.kind
    }

    /// Whether `scope` goes in the form (not only in the JWT-bearer assertion).
    pub fn scope_in_form(&self) -> bool {
        !self.scope_in_assertion
    }

    /// Whether the body names the client: not under the JWT-bearer grant without client
    /// authentication (the assertion is the client's identity, as Google wants it).
    pub fn sends_client_id(&self) -> bool {
        !(self.auth_method == AuthMethod::None && self.kind == GrantKind::JwtBearer)
    }

    /// The `aud` of the assertions cloudauth signs, for a request to `token_endpoint`.
    pub fn audience(&self, token_endpoint: &str) -> String {
        match &self.audience {
            Audience::TokenEndpoint => token_endpoint.to_owned(),
            Audience::Issuer => self.issuer.clone().unwrap_or_default(),
            Audience::Explicit(aud) => aud.clone(),
        }
    }

    /// The fields every attempt of a fetch shares: `grant_type` first, the token types, and
    /// under client_assertion its type.
    pub fn static_fields(&self, form: &mut form_urlencoded::Serializer<String>) {
        form.append_pair("grant_type", self.kind.form_value());
        if self.kind == GrantKind::TokenExchange {
            form.append_pair("subject_token_type", &self.subject_token_type);
            if let Some(requested) = &self.requested_token_type {
                form.append_pair("requested_token_type", requested);
            }
            if self.actor.is_some() {
                form.append_pair("actor_token_type", &self.actor_token_type);
            }
        }
        if self.client_assertion.is_some() {
            form.append_pair("client_assertion_type", &self.client_assertion_type);
        }
    }

    /// What the shared cache names the entry by besides the configuration: the client id and,
    /// under token exchange, whose subject token it is (`iss` and `sub`, never the token), so
    /// two workloads of one client never share a token. Reads the subject token file.
    pub fn cache_name(&self, client_id: &str) -> Result<String> {
        let Some(subject) = &self.subject else {
            return Ok(client_id.to_owned());
        };
        let token = subject.read()?;
        let who = crate::token::token_file::subject_of(token.expose()).ok_or_else(|| {
            // An opaque subject token names no one: such an exchange is not shared.
            Error::invalid(
                "subject_token_file: an opaque subject token is not cached across processes",
            )
        })?;
        Ok(format!("{client_id}\0subject\0{who}"))
    }

    /// Loads this fetch's key material: the JWT-bearer grant's key (from `client_key_file` or
    /// the service-account file, read now so replacing the file rotates it).
    pub fn prepare(self: &Arc<Grant>) -> Result<Prepared> {
        let mut signer = None;
        if self.kind == GrantKind::JwtBearer {
            let (key, kid, iss) = match (&self.credentials_file, &self.key_file) {
                (Some(path), _) => {
                    let account = ServiceAccount::load(path, self.alg)?;
                    let kid = self.key_id.clone().or(account.private_key_id);
                    let iss = self
                        .assertion_issuer
                        .clone()
                        .unwrap_or(account.client_email);
                    (account.key, kid, iss)
                }
                (None, Some(path)) => {
                    let key = SigningKey::from_file("client_key_file", path, self.alg)?;
                    let iss = self
                        .assertion_issuer
                        .clone()
                        .or_else(|| self.client_id.clone())
                        .unwrap_or_default();
                    (key, self.key_id.clone(), iss)
                }
                (None, None) => {
                    return Err(Error::invalid(
                        "client_key_file is not set (nor credentials_file)",
                    ))
                }
            };
            signer = Some((Signer::new(key, kid.as_deref()), iss));
        }
        Ok(Prepared {
            grant: self.clone(),
            signer,
        })
    }

    /// Checks a 200 answer against what was asked (RFC 8693 §2.2.1): an `issued_token_type`
    /// other than `requested_token_type` (or the access token asked for by default) is
    /// BAD_TOKEN_RESPONSE. RFC 8693's `token_type=N_A` (the issued token is not an access
    /// token, such as a requested JWT or ID token) is read as Bearer: that is how it is used.
    pub fn check_answer(&self, body: Vec<u8>) -> Result<Vec<u8>> {
        if self.kind != GrantKind::TokenExchange {
            return Ok(body);
        }
        let Ok(serde_json::Value::Object(mut obj)) = serde_json::from_slice(&body) else {
            return Ok(body); // parse_grant says what is wrong with it
        };
        if let Some(issued) = obj.get("issued_token_type") {
            let asked = self
                .requested_token_type
                .as_deref()
                .unwrap_or(TYPE_ACCESS_TOKEN);
            if issued.as_str() != Some(asked) {
                return Err(Error::new(
                    Code::CLOUDAUTH_ERR_BAD_TOKEN_RESPONSE,
                    format!(
                        "issued_token_type is {}, but {asked} was asked for",
                        quote_prefix(&crate::token::printable(&issued.to_string()), 120)
                    ),
                ));
            }
        }
        if obj
            .get("token_type")
            .and_then(|t| t.as_str())
            .is_some_and(|t| t.eq_ignore_ascii_case("N_A"))
        {
            obj.remove("token_type");
            return Ok(serde_json::to_vec(&obj).unwrap_or(body));
        }
        Ok(body)
    }
}

/// One fetch's grant material: `read_files` once per attempt, `append` for every send.
pub struct Prepared {
    grant: Arc<Grant>,
    /// The JWT-bearer grant's signer and `iss`.
    signer: Option<(Signer, String)>,
}

impl Prepared {
    /// The token files as they are now (the subject and actor tokens, the federated client
    /// assertion), each as the form field it goes in; `scrubber` learns each (a server may
    /// echo it).
    pub fn read_files(&self, scrubber: &mut Scrubber) -> Result<Vec<(&'static str, Secret)>> {
        let g = &self.grant;
        let mut files = Vec::new();
        for (name, file) in [
            ("subject_token", &g.subject),
            ("actor_token", &g.actor),
            ("client_assertion", &g.client_assertion),
        ] {
            if let Some(file) = file {
                let token = file.read()?;
                scrubber.also_jws(token.expose());
                files.push((name, token));
            }
        }
        Ok(files)
    }

    /// Appends one send's fields: a fresh JWT-bearer assertion (into `scrubber` too) and the
    /// attempt's `files`.
    pub fn append(
        &self,
        audience: &str,
        files: &[(&'static str, Secret)],
        form: &mut form_urlencoded::Serializer<String>,
        scrubber: &mut Scrubber,
    ) {
        let g = &self.grant;
        if let Some((signer, iss)) = &self.signer {
            let now = unix_now();
            let mut claims = json!({
                "iss": iss,
                "aud": audience,
                "iat": now,
                "exp": now + JWT_BEARER_LIFETIME_S,
                "jti": random_id(),
            });
            if let Some(sub) = &g.assertion_subject {
                claims["sub"] = sub.as_str().into();
            }
            if let Some(scope) = g.scope.as_deref().filter(|_| g.scope_in_assertion) {
                claims["scope"] = scope.into();
            }
            let assertion = signer.sign(&claims);
            scrubber.also_jws(assertion.expose());
            form.append_pair("assertion", assertion.expose());
        }
        for (name, token) in files {
            form.append_pair(name, token.expose());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(pairs: &[(&str, &str)]) -> EndpointSettings {
        crate::session::settings_of(pairs).0
    }

    #[test]
    fn keys_that_do_not_fit_name_the_key() {
        for (pairs, key) in [
            (
                vec![
                    ("client_id", "a"),
                    ("client_secret", "s"),
                    ("auth_method", "client_assertion"),
                    ("client_assertion_file", "/x"),
                ],
                "client_secret",
            ),
            (
                vec![
                    ("client_id", "a"),
                    ("client_secret", "s"),
                    ("subject_token_file", "/x"),
                ],
                "subject_token_file",
            ),
            (
                vec![
                    ("client_id", "a"),
                    ("client_secret", "s"),
                    ("client_assertion_file", "/x"),
                ],
                "client_assertion_file",
            ),
            (
                vec![("client_id", "a"), ("auth_method", "client_assertion")],
                "client_assertion_file",
            ),
            (
                vec![("grant_type", "jwt_bearer"), ("client_id", "a")],
                "client_key_file",
            ),
            (vec![("grant_type", "token_exchange")], "subject_token_file"),
            (
                vec![
                    ("client_id", "a"),
                    ("client_secret", "s"),
                    ("credentials_file", "/x"),
                ],
                "credentials_file",
            ),
            (
                vec![
                    ("client_id", "a"),
                    ("client_secret", "s"),
                    ("client_assertion_aud", "issuer"),
                ],
                "client_assertion_aud",
            ),
            (
                vec![
                    ("grant_type", "token_exchange"),
                    ("subject_token_file", "/nonexistent/t"),
                    ("actor_token_type", "x"),
                ],
                "actor_token_type",
            ),
        ] {
            let Err(err) = resolve(&cfg(&pairs)) else {
                panic!("{key}: accepted")
            };
            assert_eq!(err.code, Code::CLOUDAUTH_ERR_INVALID_ARGUMENT);
            assert!(err.message.starts_with(key), "{key}: {}", err.message);
        }
    }

    #[test]
    fn workload_grants_default_to_no_client_authentication() {
        let dir = crate::token::token_file::tests::tempdir();
        let path = dir.join("sub.jwt");
        std::fs::write(&path, "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln\n").unwrap();
        let c = resolve(&cfg(&[
            ("grant_type", "token_exchange"),
            ("subject_token_file", path.to_str().unwrap()),
        ]))
        .unwrap();
        assert_eq!(c.auth_method, AuthMethod::None);
        let c = resolve(&cfg(&[
            ("grant_type", "token_exchange"),
            ("subject_token_file", path.to_str().unwrap()),
            ("client_id", "a"),
            ("client_secret", "s"),
        ]))
        .unwrap();
        assert_eq!(c.auth_method, AuthMethod::ClientSecretPost);
    }

    #[test]
    fn issued_token_type_is_checked() {
        let dir = crate::token::token_file::tests::tempdir();
        let path = dir.join("sub.jwt");
        std::fs::write(&path, "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln").unwrap();
        let c = resolve(&cfg(&[
            ("grant_type", "token_exchange"),
            ("subject_token_file", path.to_str().unwrap()),
        ]))
        .unwrap();
        let g = Grant::new(&c);
        let ok = br#"{"access_token":"a","issued_token_type":"urn:ietf:params:oauth:token-type:access_token","token_type":"Bearer"}"#;
        assert_eq!(g.check_answer(ok.to_vec()).unwrap(), ok.to_vec());
        let wrong = br#"{"access_token":"a","issued_token_type":"urn:ietf:params:oauth:token-type:refresh_token"}"#;
        let err = g.check_answer(wrong.to_vec()).unwrap_err();
        assert_eq!(err.code, Code::CLOUDAUTH_ERR_BAD_TOKEN_RESPONSE);
        assert!(err.message.contains("refresh_token"), "{}", err.message);
        let na = br#"{"access_token":"a","issued_token_type":"urn:ietf:params:oauth:token-type:access_token","token_type":"N_A"}"#;
        let body = g.check_answer(na.to_vec()).unwrap();
        assert!(crate::token::parse_grant(&body, std::time::Duration::from_secs(60)).is_ok());
    }
}
