//! What the token layer is told of the configuration: the token request (where it goes, how
//! the client authenticates, what it asks for) and its retries. The session builds it from
//! `Config` (src/session.rs); nothing in `token` sees `Config`.

use crate::events::Events;
use crate::jose::Alg;
use crate::oauth::{AuthMethod, WorkloadSettings, DEFAULT_TOKEN_URL};
use crate::secret::Secret;
use std::time::Duration;

#[derive(Clone)]
pub struct EndpointSettings {
    pub client_id: Option<String>,
    pub client_secret: Option<Secret>,
    /// Read at every token request instead of `client_secret`.
    pub client_secret_file: Option<String>,
    /// `None`: discovery (`issuer`) decides, else [`DEFAULT_TOKEN_URL`] (see
    /// [`EndpointSettings::token_url`]).
    pub token_url: Option<String>,
    pub issuer: Option<String>,
    pub scope: Option<String>,
    /// As resolved when the session was built (workload grants default to `none`).
    pub auth_method: AuthMethod,
    pub client_key_file: Option<String>,
    pub client_key_id: Option<String>,
    pub client_assertion_alg: Option<Alg>,
    pub client_cert_file: Option<String>,
    pub audience: Option<String>,
    pub resource: Vec<String>,
    pub token_params: Vec<(String, String)>,
    pub allow_insecure_http: bool,
    pub max_retries: u32,
    pub max_retry_wait: Duration,
    pub refresh_skew: Duration,
    pub default_expires_in: Duration,
    pub workload: WorkloadSettings,
    pub events: Events,
}

impl EndpointSettings {
    /// The token endpoint's URL as set, or the default (Aspose's).
    pub fn token_url(&self) -> &str {
        self.token_url.as_deref().unwrap_or(DEFAULT_TOKEN_URL)
    }
}
