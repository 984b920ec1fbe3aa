//! The configuration a session is built from, set key by key as strings (the C ABI's model).

use crate::error::{Error, Result};
use crate::events::Events;
use crate::http::url_policy::parse_http_url;
use crate::jose::Alg;
use crate::oauth::WorkloadSettings;
pub use crate::oauth::{AuthMethod, TokenCacheKind, DEFAULT_TOKEN_URL};
use crate::secret::Secret;
use std::time::Duration;

pub const DEFAULT_BASE_URL: &str = "https://api.aspose.cloud";
/// The highest `max_response_bytes`: a whole response is held in memory, so the cap must be
/// one the process can actually allocate.
pub const MAX_RESPONSE_BYTES_LIMIT: u64 = 1 << 30;

/// How a token due for refresh is refreshed (`refresh_mode`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RefreshMode {
    /// The first caller inside the refresh window starts one refresh on a library thread and
    /// keeps using the valid token.
    Background,
    /// Background, and an idle session also refreshes on time.
    Eager,
    /// One caller refreshes on its own thread (v0); no library threads.
    Inline,
}

/// Its Debug output shows no secret: not the client secret, no URL's user info or query
/// (proxy, redis_url, token_url...), no token_param value.
#[derive(Clone)]
pub struct Config {
    pub client_id: Option<String>,
    pub client_secret: Option<Secret>,
    /// `None` until set: then discovery (`issuer`) decides, else [`DEFAULT_TOKEN_URL`]
    /// (see [`Config::token_url`]).
    pub token_url: Option<String>,
    pub base_url: String,
    pub scope: Option<String>,
    /// `None` until set (the session picks the default: src/session.rs).
    pub auth_method: Option<AuthMethod>,
    pub timeout: Duration,
    pub connect_timeout: Duration,
    pub refresh_skew: Duration,
    pub max_retries: u32,
    pub max_retry_wait: Duration,
    pub default_expires_in: Duration,
    pub max_response_bytes: usize,
    pub user_agent: String,
    pub ca_file: Option<String>,
    pub proxy: Option<String>,
    pub allow_insecure_http: bool,
    pub token_cache: TokenCacheKind,
    /// `None`: `$XDG_CACHE_HOME/cloudauth`, else `~/.cache/cloudauth`, resolved when used.
    pub token_cache_dir: Option<String>,
    /// Holds the password, if any: shown only through `redact`.
    pub redis_url: Option<Secret>,
    pub token_cache_timeout: Duration,
    pub refresh_mode: RefreshMode,
    /// Read at every token request instead of `client_secret`.
    pub client_secret_file: Option<String>,
    /// private_key_jwt's key (PEM), read at every token request.
    pub client_key_file: Option<String>,
    /// The assertion's `kid` header.
    pub client_key_id: Option<String>,
    /// `None`: the key's usual algorithm.
    pub client_assertion_alg: Option<Alg>,
    /// Its `x5t#S256` goes in the assertion's header (and mTLS presents it).
    pub client_cert_file: Option<String>,
    /// DPoP (RFC 9449) proofs on the token request and every API request.
    pub dpop: bool,
    /// The DPoP key (PEM); `None`: a new ES256 key per session.
    pub dpop_key_file: Option<String>,
    /// Discovery (RFC 8414 / OpenID Connect Discovery) finds the token endpoint from it.
    pub issuer: Option<String>,
    pub audience: Option<String>,
    /// RFC 8707 resource indicators, one form field each.
    pub resource: Vec<String>,
    /// `token_param.NAME=VALUE`: extra form fields of the token request, in the order set.
    pub token_params: Vec<(String, String)>,
    /// Workload identity: grant_type, assertion and token files (src/token/grant.rs).
    pub workload: WorkloadSettings,
    pub events: Events,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            client_id: None,
            client_secret: None,
            token_url: None,
            base_url: DEFAULT_BASE_URL.into(),
            scope: None,
            auth_method: None,
            timeout: Duration::from_millis(30_000),
            connect_timeout: Duration::from_millis(10_000),
            refresh_skew: Duration::from_secs(60),
            max_retries: 2,
            max_retry_wait: Duration::from_millis(10_000),
            default_expires_in: Duration::from_secs(3600),
            max_response_bytes: 64 << 20,
            user_agent: concat!("cloudauth/", env!("CARGO_PKG_VERSION")).into(),
            ca_file: None,
            proxy: None,
            allow_insecure_http: false,
            token_cache: TokenCacheKind::Memory,
            token_cache_dir: None,
            redis_url: None,
            token_cache_timeout: Duration::from_millis(250),
            refresh_mode: RefreshMode::Background,
            client_secret_file: None,
            client_key_file: None,
            client_key_id: None,
            client_assertion_alg: None,
            client_cert_file: None,
            dpop: false,
            dpop_key_file: None,
            issuer: None,
            audience: None,
            resource: Vec::new(),
            token_params: Vec::new(),
            workload: Default::default(),
            events: Events::default(),
        }
    }
}

/// The keys `set` accepts besides the workload identity keys (see [`keys`]).
pub const KEYS: &[&str] = &[
    "client_id",
    "client_secret",
    "token_url",
    "base_url",
    "scope",
    "auth_method",
    "timeout_ms",
    "connect_timeout_ms",
    "refresh_skew_s",
    "max_retries",
    "max_retry_wait_ms",
    "default_expires_in_s",
    "max_response_bytes",
    "user_agent",
    "ca_file",
    "proxy",
    "allow_insecure_http",
    "token_cache",
    "token_cache_dir",
    "redis_url",
    "token_cache_timeout_ms",
    "refresh_mode",
    "client_secret_file",
    "client_key_file",
    "client_key_id",
    "client_assertion_alg",
    "client_cert_file",
    "dpop",
    "dpop_key_file",
    "issuer",
    "audience",
    "resource",
];

/// Every key `set` accepts: [`KEYS`], then the workload identity keys
/// ([`WorkloadSettings::KEYS`]), for the "unknown key" message and `from_env`.
pub fn keys() -> impl Iterator<Item = &'static str> {
    KEYS.iter().chain(WorkloadSettings::KEYS).copied()
}

/// `token_param.NAME` sets the form field NAME (not read from the environment: a variable
/// name cannot carry every field name).
pub const TOKEN_PARAM_PREFIX: &str = "token_param.";

/// Form fields the library writes itself; a `token_param` may not replace them.
const RESERVED_PARAMS: &[&str] = &[
    "grant_type",
    "client_id",
    "client_secret",
    "client_assertion",
    "client_assertion_type",
    "scope",
    "audience",
    "resource",
    "assertion",
    "subject_token",
    "subject_token_type",
    "requested_token_type",
    "actor_token",
    "actor_token_type",
];

impl Config {
    /// The token endpoint's URL as set, or the default (Aspose's).
    pub fn token_url(&self) -> &str {
        self.token_url.as_deref().unwrap_or(DEFAULT_TOKEN_URL)
    }

    /// Sets one key. Unknown keys and malformed values are errors naming the key; the secret's
    /// value never appears in a message.
    pub fn set(&mut self, key: &str, value: &str) -> Result<()> {
        match key {
            "client_id" => self.client_id = Some(non_empty(key, value)?.to_owned()),
            "client_secret" => {
                if value.is_empty() {
                    return Err(Error::invalid("client_secret must not be empty"));
                }
                self.client_secret = Some(Secret::new(value));
            }
            "token_url" => {
                self.token_url = Some(parse_http_url(key, value)?.into());
            }
            "base_url" => self.base_url = parse_http_url(key, value)?.into(),
            "scope" => self.scope = (!value.is_empty()).then(|| value.to_owned()),
            "auth_method" => {
                self.auth_method = Some(match value {
                    "client_secret_post" => AuthMethod::ClientSecretPost,
                    "client_secret_basic" => AuthMethod::ClientSecretBasic,
                    "private_key_jwt" => AuthMethod::PrivateKeyJwt,
                    "client_secret_jwt" => AuthMethod::ClientSecretJwt,
                    "tls_client_auth" => AuthMethod::TlsClientAuth,
                    "self_signed_tls_client_auth" => AuthMethod::SelfSignedTlsClientAuth,
                    "client_assertion" => AuthMethod::ClientAssertion,
                    "none" => AuthMethod::None,
                    _ => {
                        return Err(bad_value(
                            key,
                            value,
                            "client_secret_post, client_secret_basic, private_key_jwt, \
                             client_secret_jwt, tls_client_auth, self_signed_tls_client_auth, \
                             client_assertion or none",
                        ))
                    }
                });
            }
            "timeout_ms" => self.timeout = millis(key, value)?,
            "connect_timeout_ms" => self.connect_timeout = millis(key, value)?,
            "refresh_skew_s" => {
                self.refresh_skew = Duration::from_secs(number(key, value, 0, 86_400)?)
            }
            "max_retries" => self.max_retries = number(key, value, 0, 10)? as u32,
            "max_retry_wait_ms" => {
                self.max_retry_wait = Duration::from_millis(number(key, value, 0, 600_000)?)
            }
            "default_expires_in_s" => {
                self.default_expires_in = Duration::from_secs(number(key, value, 1, 86_400 * 365)?)
            }
            "max_response_bytes" => {
                self.max_response_bytes = number(key, value, 1, MAX_RESPONSE_BYTES_LIMIT)? as usize
            }
            "user_agent" => self.user_agent = header_safe(key, value)?.to_owned(),
            "ca_file" => self.ca_file = Some(non_empty(key, value)?.to_owned()),
            "proxy" => {
                crate::http::url_policy::check_proxy(key, value)?;
                self.proxy = Some(value.to_owned());
            }
            "allow_insecure_http" => self.allow_insecure_http = boolean(key, value)?,
            "token_cache" => {
                self.token_cache = match value {
                    "memory" => TokenCacheKind::Memory,
                    "file" => TokenCacheKind::File,
                    "redis" => TokenCacheKind::Redis,
                    _ => return Err(bad_value(key, value, "memory, file or redis")),
                }
            }
            "token_cache_dir" => self.token_cache_dir = Some(non_empty(key, value)?.to_owned()),
            "redis_url" => {
                crate::http::url_policy::check_redis_url(value)?;
                self.redis_url = Some(Secret::new(value));
            }
            "token_cache_timeout_ms" => {
                self.token_cache_timeout = Duration::from_millis(number(key, value, 1, 60_000)?)
            }
            "refresh_mode" => {
                self.refresh_mode = match value {
                    "background" => RefreshMode::Background,
                    "eager" => RefreshMode::Eager,
                    "inline" => RefreshMode::Inline,
                    _ => return Err(bad_value(key, value, "background, eager or inline")),
                }
            }
            "client_secret_file" => {
                self.client_secret_file = (!value.is_empty()).then(|| value.to_owned())
            }
            "client_key_file" => self.client_key_file = optional(value),
            "client_key_id" => self.client_key_id = optional(value),
            "client_assertion_alg" => {
                self.client_assertion_alg = match value {
                    "" => None,
                    _ => Some(Alg::parse(value).ok_or_else(|| {
                        bad_value(key, value, "RS256, PS256, ES256, ES384, EdDSA or HS256")
                    })?),
                }
            }
            "client_cert_file" => self.client_cert_file = optional(value),
            "dpop" => self.dpop = boolean(key, value)?,
            "dpop_key_file" => self.dpop_key_file = optional(value),
            "issuer" => {
                self.issuer = match value {
                    "" => None,
                    _ => Some(crate::http::url_policy::parse_issuer(value)?),
                }
            }
            "audience" => self.audience = optional(value),
            "resource" => {
                self.resource = value
                    .split(',')
                    .map(str::trim)
                    .filter(|r| !r.is_empty())
                    .map(resource_indicator)
                    .collect::<Result<_>>()?
            }
            _ if key.starts_with(TOKEN_PARAM_PREFIX) => self.set_token_param(key, value)?,
            _ if WorkloadSettings::has_key(key) => self.workload.set(key, value)?,
            _ => {
                return Err(Error::invalid(format!(
                    "unknown configuration key '{}'; known keys: {}",
                    crate::error::quote_prefix(key, 40),
                    keys().collect::<Vec<_>>().join(", ")
                )))
            }
        }
        Ok(())
    }
}

impl Config {
    /// `token_param.NAME=VALUE`: adds or replaces the field; an empty value removes it.
    fn set_token_param(&mut self, key: &str, value: &str) -> Result<()> {
        let name = &key[TOKEN_PARAM_PREFIX.len()..];
        if name.is_empty() || name.bytes().any(|b| b.is_ascii_control()) {
            return Err(Error::invalid(format!(
                "{}: the field name must be non-empty and printable",
                crate::error::quote_prefix(key, 60)
            )));
        }
        if RESERVED_PARAMS.contains(&name) {
            return Err(Error::invalid(format!(
                "{key}: '{name}' is written by the library itself (use its own key, or \
                 auth_method) and cannot be a token_param"
            )));
        }
        self.token_params.retain(|(n, _)| n != name);
        if !value.is_empty() {
            self.token_params.push((name.to_owned(), value.to_owned()));
        }
        Ok(())
    }
}

/// The prefix `from_env` uses when none is given.
pub const ENV_PREFIX: &str = "CLOUDAUTH_";

impl Config {
    /// The defaults, then every known key found in the environment (see [`Config::set_from_env`]).
    pub fn from_env(prefix: Option<&str>) -> Result<Config> {
        let mut cfg = Config::default();
        cfg.set_from_env(prefix)?;
        Ok(cfg)
    }

    /// For every key K of [`keys`], sets K from the variable `<prefix><K upper-cased>` when it
    /// is present (prefix `None` means `CLOUDAUTH_`), with `set`'s rules. Other variables are
    /// never read. On failure nothing is changed and the message names the variable.
    pub fn set_from_env(&mut self, prefix: Option<&str>) -> Result<()> {
        self.set_from_vars(prefix, |name| std::env::var_os(name))
    }

    /// `set_from_env` with the variables looked up by `lookup`.
    pub fn set_from_vars(
        &mut self,
        prefix: Option<&str>,
        lookup: impl Fn(&str) -> Option<std::ffi::OsString>,
    ) -> Result<()> {
        let prefix = prefix.unwrap_or(ENV_PREFIX);
        if prefix.contains(['=', '\0']) {
            return Err(Error::invalid(format!(
                "environment prefix '{}' must not contain '=' or NUL",
                shown(prefix)
            )));
        }
        // Applied to a copy so that a bad variable leaves the config as it was.
        let mut next = self.clone();
        for key in keys() {
            let var = format!("{prefix}{}", key.to_ascii_uppercase());
            let Some(value) = lookup(&var) else { continue };
            let value = value.to_str().ok_or_else(|| {
                Error::invalid(format!("environment variable {var} is not valid UTF-8"))
            })?;
            next.set(key, value)
                .map_err(|e| env_error(&var, key, value, e))?;
        }
        *self = next;
        Ok(())
    }
}

/// Renames the key to the variable in `set`'s message ("timeout_ms: 'x' is not valid" becomes
/// "CLOUDAUTH_TIMEOUT_MS: 'x' is not valid"). A secret's value is masked as a second line of
/// defence: `set` already never shows it.
fn env_error(var: &str, key: &str, value: &str, e: Error) -> Error {
    let mut message = match e.message.strip_prefix(key) {
        Some(rest) => format!("{var}{rest}"),
        None => format!("{var}: {}", e.message),
    };
    if key.contains("secret") && !value.is_empty() {
        message = message.replace(value, "***");
    }
    Error::new(e.code, message)
}

/// A rejected value as a message quotes it: a short prefix only, since a secret pasted into
/// the wrong key must not come back whole.
fn shown(value: &str) -> String {
    crate::error::quote_prefix(value, 10)
}

fn bad_value(key: &str, value: &str, expected: &str) -> Error {
    Error::invalid(format!(
        "{key}: '{}' is not valid; expected {expected}",
        shown(value)
    ))
}

/// RFC 8707 §2: an absolute URI without a fragment (https://…, or a URN).
fn resource_indicator(value: &str) -> Result<String> {
    match url::Url::parse(value) {
        Ok(url) if url.fragment().is_none() => Ok(value.to_owned()),
        _ => Err(Error::invalid(format!(
            "resource: '{}' is not an absolute URI without a fragment (RFC 8707)",
            crate::error::quote_prefix(value, 60)
        ))),
    }
}

fn optional(value: &str) -> Option<String> {
    (!value.is_empty()).then(|| value.to_owned())
}

fn non_empty<'a>(key: &str, value: &'a str) -> Result<&'a str> {
    if value.is_empty() {
        return Err(Error::invalid(format!("{key} must not be empty")));
    }
    Ok(value)
}

fn header_safe<'a>(key: &str, value: &'a str) -> Result<&'a str> {
    if value.bytes().any(|b| b < 0x20 && b != b'\t' || b == 0x7f) {
        return Err(Error::invalid(format!(
            "{key} must not contain control characters"
        )));
    }
    Ok(value)
}

fn number(key: &str, value: &str, min: u64, max: u64) -> Result<u64> {
    match value.trim().parse::<u64>() {
        Ok(n) if (min..=max).contains(&n) => Ok(n),
        _ => Err(bad_value(
            key,
            value,
            &format!("a whole number from {min} to {max}"),
        )),
    }
}

fn millis(key: &str, value: &str) -> Result<Duration> {
    Ok(Duration::from_millis(number(key, value, 1, 3_600_000)?))
}

fn boolean(key: &str, value: &str) -> Result<bool> {
    match value.to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Ok(true),
        "false" | "0" | "no" | "off" => Ok(false),
        _ => Err(bad_value(key, value, "true or false")),
    }
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        use crate::http::url_policy::redact_str;
        let url = |u: &Option<String>| u.as_deref().map(redact_str);
        let names: Vec<&str> = self.token_params.iter().map(|(n, _)| n.as_str()).collect();
        f.debug_struct("Config")
            .field("client_id", &self.client_id)
            .field("client_secret", &self.client_secret)
            .field("token_url", &url(&self.token_url))
            .field("base_url", &redact_str(&self.base_url))
            .field("scope", &self.scope)
            .field("auth_method", &self.auth_method)
            .field("timeout", &self.timeout)
            .field("connect_timeout", &self.connect_timeout)
            .field("refresh_skew", &self.refresh_skew)
            .field("max_retries", &self.max_retries)
            .field("max_retry_wait", &self.max_retry_wait)
            .field("default_expires_in", &self.default_expires_in)
            .field("max_response_bytes", &self.max_response_bytes)
            .field("user_agent", &self.user_agent)
            .field("ca_file", &self.ca_file)
            .field("proxy", &url(&self.proxy))
            .field("allow_insecure_http", &self.allow_insecure_http)
            .field("token_cache", &self.token_cache)
            .field("token_cache_dir", &self.token_cache_dir)
            .field("redis_url", &self.redis_url)
            .field("token_cache_timeout", &self.token_cache_timeout)
            .field("refresh_mode", &self.refresh_mode)
            .field("client_secret_file", &self.client_secret_file)
            .field("client_key_file", &self.client_key_file)
            .field("client_key_id", &self.client_key_id)
            .field("client_assertion_alg", &self.client_assertion_alg)
            .field("client_cert_file", &self.client_cert_file)
            .field("dpop", &self.dpop)
            .field("dpop_key_file", &self.dpop_key_file)
            .field("issuer", &url(&self.issuer))
            .field("audience", &self.audience)
            .field("resource", &self.resource)
            .field("token_param_names", &names)
            .field("workload", &self.workload)
            .field("events", &self.events)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Code;

    #[test]
    fn unknown_key_is_named() {
        let err = Config::default().set("timeout", "5").unwrap_err();
        assert!(err.message.contains("'timeout'"), "{}", err.message);
    }

    #[test]
    fn malformed_values_name_the_key() {
        let mut c = Config::default();
        for (k, v) in [
            ("timeout_ms", "abc"),
            ("timeout_ms", "0"),
            ("max_retries", "-1"),
            ("auth_method", "nope"),
            ("allow_insecure_http", "maybe"),
            ("token_url", "not a url"),
            ("base_url", "ftp://x/"),
            ("user_agent", "a\r\nb"),
            ("max_response_bytes", "1099511627776"),
            ("max_response_bytes", "1073741825"),
            ("token_cache", "disk"),
            ("token_cache_dir", ""),
            ("redis_url", "http://localhost:6379"),
            ("redis_url", "redis://:hunter2@"),
            ("token_cache_timeout_ms", "0"),
            ("auth_method", "tls_client_auth_typo"),
            ("client_assertion_alg", "RS512"),
            ("client_assertion_alg", "none"),
            ("dpop", "maybe"),
            ("issuer", "https://idp.example/?tenant=1"),
            ("issuer", "ldap://idp.example"),
            ("resource", "https://ok.example,not a url"),
            ("token_param.", "v"),
            ("token_param.grant_type", "password"),
            ("token_param.client_assertion", "forged"),
        ] {
            let err = c.set(k, v).unwrap_err();
            assert!(err.message.starts_with(k), "{k}: {}", err.message);
        }
    }

    #[test]
    fn values_are_applied() {
        let mut c = Config::default();
        c.set("timeout_ms", "1500").unwrap();
        c.set("max_response_bytes", "1073741824").unwrap();
        assert_eq!(c.max_response_bytes, 1 << 30);
        c.set("auth_method", "client_secret_basic").unwrap();
        c.set("allow_insecure_http", "TRUE").unwrap();
        c.set("client_secret", "s").unwrap();
        assert_eq!(c.timeout, Duration::from_millis(1500));
        assert_eq!(c.auth_method, Some(AuthMethod::ClientSecretBasic));
        assert!(c.allow_insecure_http);
        assert!(!format!("{c:?}").contains("client_secret: Some(s"));
    }

    #[test]
    fn redis_url_password_is_never_shown() {
        let mut c = Config::default();
        for bad in [
            "redis://:hunter2@",
            "redis://u:hunter2@host:notaport/",
            "redis://:hunter2@h/x",
        ] {
            let err = c.set("redis_url", bad).unwrap_err();
            assert!(err.message.starts_with("redis_url"), "{}", err.message);
            assert!(!err.message.contains("hunter2"), "{}", err.message);
        }
        c.set("redis_url", "rediss://user:hunter2@cache.example:6380/2")
            .unwrap();
        assert!(!format!("{c:?}").contains("hunter2"));
        c.set("token_cache", "redis").unwrap();
        assert_eq!(c.token_cache, TokenCacheKind::Redis);
    }

    fn vars(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<std::ffi::OsString> {
        let map: std::collections::HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |name| map.get(name).map(Into::into)
    }

    #[test]
    fn env_sets_every_known_key_with_the_prefix() {
        let mut c = Config::default();
        c.set_from_vars(
            None,
            vars(&[
                ("CLOUDAUTH_CLIENT_ID", "id-from-env"),
                ("CLOUDAUTH_CLIENT_SECRET", "secret-from-env"),
                ("CLOUDAUTH_TOKEN_URL", "http://127.0.0.1:9/connect/token"),
                ("CLOUDAUTH_TIMEOUT_MS", "1234"),
                ("CLOUDAUTH_AUTH_METHOD", "client_secret_basic"),
                ("CLOUDAUTH_LIBRARY", "/not/a/key"),
                ("OTHER_CLIENT_ID", "not-mine"),
            ]),
        )
        .unwrap();
        assert_eq!(c.client_id.as_deref(), Some("id-from-env"));
        assert_eq!(
            c.client_secret.as_ref().unwrap().expose(),
            "secret-from-env"
        );
        assert_eq!(c.token_url(), "http://127.0.0.1:9/connect/token");
        assert_eq!(c.timeout, Duration::from_millis(1234));
        assert_eq!(c.auth_method, Some(AuthMethod::ClientSecretBasic));

        let mut d = Config::default();
        d.set_from_vars(
            Some("APP_"),
            vars(&[("APP_CLIENT_ID", "app"), ("CLOUDAUTH_CLIENT_ID", "x")]),
        )
        .unwrap();
        assert_eq!(d.client_id.as_deref(), Some("app"));
    }

    #[test]
    fn env_sets_the_identity_provider_keys_but_not_token_params() {
        let mut c = Config::default();
        c.set_from_vars(
            None,
            vars(&[
                ("CLOUDAUTH_AUTH_METHOD", "private_key_jwt"),
                ("CLOUDAUTH_CLIENT_KEY_FILE", "/k.pem"),
                ("CLOUDAUTH_CLIENT_ASSERTION_ALG", "PS256"),
                ("CLOUDAUTH_DPOP", "true"),
                ("CLOUDAUTH_ISSUER", "https://idp.example/t"),
                ("CLOUDAUTH_RESOURCE", "https://a.example,https://b.example"),
                ("CLOUDAUTH_TOKEN_PARAM.TENANT", "x"),
                ("CLOUDAUTH_TOKEN_PARAM_TENANT", "x"),
            ]),
        )
        .unwrap();
        assert_eq!(c.auth_method, Some(AuthMethod::PrivateKeyJwt));
        assert_eq!(c.client_key_file.as_deref(), Some("/k.pem"));
        assert_eq!(c.client_assertion_alg, Some(Alg::PS256));
        assert!(c.dpop);
        assert_eq!(c.issuer.as_deref(), Some("https://idp.example/t"));
        assert_eq!(c.resource.len(), 2);
        assert!(c.token_params.is_empty());
        let err = Config::default()
            .set_from_vars(None, vars(&[("CLOUDAUTH_CLIENT_ASSERTION_ALG", "none")]))
            .unwrap_err();
        assert!(
            err.message.starts_with("CLOUDAUTH_CLIENT_ASSERTION_ALG"),
            "{}",
            err.message
        );
    }

    #[test]
    fn env_reads_only_known_keys() {
        let asked = std::sync::Mutex::new(Vec::new());
        Config::default()
            .set_from_vars(Some("P_"), |name| {
                asked.lock().unwrap().push(name.to_owned());
                None
            })
            .unwrap();
        let want: Vec<String> = keys().map(|k| format!("P_{}", k.to_uppercase())).collect();
        assert_eq!(*asked.lock().unwrap(), want);
    }

    #[test]
    fn env_errors_name_the_variable_and_change_nothing() {
        let mut c = Config::default();
        let err = c
            .set_from_vars(
                None,
                vars(&[
                    ("CLOUDAUTH_CLIENT_ID", "ok"),
                    ("CLOUDAUTH_TIMEOUT_MS", "soon"),
                ]),
            )
            .unwrap_err();
        assert_eq!(err.code, Code::CLOUDAUTH_ERR_INVALID_ARGUMENT);
        assert!(
            err.message.starts_with("CLOUDAUTH_TIMEOUT_MS: 'soon'"),
            "{}",
            err.message
        );
        assert_eq!(
            c.client_id, None,
            "a failed call leaves the config as it was"
        );

        let err = c
            .set_from_vars(None, vars(&[("CLOUDAUTH_CLIENT_SECRET", "")]))
            .unwrap_err();
        assert!(
            err.message.starts_with("CLOUDAUTH_CLIENT_SECRET"),
            "{}",
            err.message
        );

        let err = c.set_from_vars(Some("A=B"), vars(&[])).unwrap_err();
        assert!(err.message.contains("prefix"), "{}", err.message);
    }

    #[test]
    fn env_value_that_is_not_utf8_names_the_variable() {
        use std::os::unix::ffi::OsStringExt;
        let err = Config::default()
            .set_from_vars(None, |name| {
                (name == "CLOUDAUTH_CLIENT_SECRET")
                    .then(|| std::ffi::OsString::from_vec(vec![b's', 0xff]))
            })
            .unwrap_err();
        assert_eq!(
            err.message,
            "environment variable CLOUDAUTH_CLIENT_SECRET is not valid UTF-8"
        );
    }

    #[test]
    fn env_secret_never_shown() {
        // A value `set` rejects while echoing it would be masked here (a second line of defence).
        let e = env_error(
            "CLOUDAUTH_CLIENT_SECRET",
            "client_secret",
            "hunter2",
            Error::invalid("client_secret: 'hunter2' is not valid"),
        );
        assert_eq!(e.message, "CLOUDAUTH_CLIENT_SECRET: '***' is not valid");
    }

    #[test]
    fn env_from_the_real_environment() {
        // A prefix of its own: no other test reads these variables.
        std::env::set_var("CFGTEST_ENV_CLIENT_ID", "real-env-id");
        std::env::set_var("CFGTEST_ENV_MAX_RETRIES", "5");
        let c = Config::from_env(Some("CFGTEST_ENV_")).unwrap();
        assert_eq!(c.client_id.as_deref(), Some("real-env-id"));
        assert_eq!(c.max_retries, 5);
        std::env::set_var("CFGTEST_ENV_MAX_RETRIES", "11");
        let err = Config::from_env(Some("CFGTEST_ENV_")).unwrap_err();
        assert!(
            err.message.starts_with("CFGTEST_ENV_MAX_RETRIES: '11'"),
            "{}",
            err.message
        );
    }
}
