//! The client-credentials grant (RFC 6749 §4.4) against the token endpoint, with bounded retries
//! of transient failures.

use crate::dpop::{Dpop, DPOP};
use crate::error::{one_line, quote_prefix, Code, Error, Result};
use crate::events::{Event, EventKind, Events};
use crate::http::client_cert::ClientCert;
use crate::http::clients::Role;
use crate::http::header::{
    HeaderMap, HeaderValue, ACCEPT, AUTHORIZATION, CONTENT_TYPE, RETRY_AFTER,
};
use crate::http::pipeline::{Exchange, Hooks, Step};
use crate::http::request::ApiRequest;
use crate::http::transport::Transport;
use crate::http::url_policy::{check_secure, parse_http_url, redact};
use crate::http::{Method, StatusCode};
use crate::oauth::{AuthMethod, GrantKind, ASSERTION_TYPE};
use crate::secret::{Scrubber, Secret};
use crate::token::assertion::{AssertionConfig, Signer};
use crate::token::discovery::Discovery;
use crate::token::grant::{Grant, Prepared};
use crate::token::shared::seal_key::SealKey;
use crate::token::{
    oauth_error_text, parse_grant, printable, EndpointSettings, Token, MAX_TOKEN_RESPONSE_BYTES,
};
use arc_swap::ArcSwap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};
use url::Url;

const STEP: &str = "token request to";
const FIRST_BACKOFF: Duration = Duration::from_millis(250);
/// How much of the server's own text (scrubbed first) a message quotes.
const QUOTED_CHARS: usize = 240;

pub struct TokenEndpoint {
    transport: Transport,
    target: Target,
    scope: Option<String>,
    /// audience, resource and token_param fields, in that order.
    params: Vec<(String, String)>,
    auth_method: AuthMethod,
    /// Under the JWT auth methods: how each request's client assertion is made.
    assertion: Option<AssertionConfig>,
    /// Replaced whole by `set_credentials`; a fetch in flight keeps the ones it started with,
    /// and the old secret is zeroed when the last user lets go.
    credentials: ArcSwap<Credentials>,
    max_retries: u32,
    max_retry_wait: Duration,
    refresh_skew: Duration,
    default_expires_in: Duration,
    events: Events,
    /// With `dpop=true`: signs a proof for each token request and keeps the server's nonce.
    dpop: Option<Arc<Dpop>>,
    /// grant_type and what each attempt reads or signs for it (src/token/grant.rs).
    grant: Arc<Grant>,
    /// Seals shared-cache entries when the credential cannot (it rotates, or there is none).
    seal_key: Option<SealKey>,
}

/// Where token requests go: `token_url`, or what discovery finds from `issuer`.
pub enum Target {
    Fixed(Url),
    Discovered(Discovery),
}

impl Target {
    /// An explicit `token_url` wins over `issuer`.
    pub fn from_settings(cfg: &EndpointSettings) -> Result<Target> {
        match &cfg.issuer {
            Some(issuer) if cfg.token_url.is_none() => Ok(Target::Discovered(Discovery::new(
                issuer,
                cfg.allow_insecure_http,
            )?)),
            _ => {
                let url = parse_http_url("token_url", cfg.token_url())?;
                check_secure("token_url", &url, cfg.allow_insecure_http)?;
                Ok(Target::Fixed(url))
            }
        }
    }
}

/// The client's identity and where its secret comes from.
pub struct Credentials {
    pub client_id: String,
    pub secret: SecretSource,
}

pub enum SecretSource {
    Value(Secret),
    /// Read at every token request, so replacing the file rotates the secret.
    File(String),
    /// Mutual TLS: no secret is sent; the certificate and key files are read again at every
    /// token request (rotation), and their digest stands in for the secret where one is
    /// needed (the shared cache's sealing key).
    Certificate(Arc<ClientCert>),
    /// private_key_jwt's `client_key_file`, read whole at every token request: the PEM text is
    /// the secret (the assertion's key, and the shared cache's sealing key).
    KeyFile(String),
    /// A service-account key file (the JWT-bearer grant's `credentials_file`): its text seals.
    ServiceAccount(String),
    /// No stored credential (auth_method client_assertion or none): `token_cache_key_file`
    /// seals shared entries.
    Nothing,
}

/// What one fetch sends: the form body (it holds the secret under client_secret_post) and
/// the `Basic …` value under client_secret_basic; both zeroed when dropped.
struct Wire {
    url: Url,
    form: Secret,
    basic: Option<HeaderValue>,
    /// Under the JWT methods: signs a fresh assertion for each attempt.
    signer: Option<Signer>,
    /// The `aud` of the assertions signed for this fetch (`client_assertion_aud`).
    aud: String,
    /// The grant's per-attempt fields (assertion, subject token, federated assertion).
    extras: Prepared,
    dpop: Option<Arc<Dpop>>,
    client_id: String,
    /// Takes the secret, in every encoding, out of every message: a server may echo it back.
    scrubber: Scrubber,
}

/// One attempt: what its sends carry (each send of it, a resend too, signs its own assertion
/// and proof), and the scrubber that knows every one of them.
struct Attempt<'a> {
    wire: &'a Wire,
    scrubber: Scrubber,
    /// The token files as this attempt read them (`grant::Prepared::read_files`).
    files: Vec<(&'static str, Secret)>,
}

/// One attempt's failure, and whether another attempt may help (with the server's wish).
struct Failure {
    error: Error,
    transient: bool,
    retry_after: Option<Duration>,
    /// A DPoP server asked for a nonce and sent one (learned already).
    use_dpop_nonce: bool,
}

impl Credentials {
    /// From the configuration: exactly one of client_secret and client_secret_file, or with
    /// mutual TLS (`cert`) neither.
    pub fn from_settings(
        cfg: &EndpointSettings,
        cert: Option<&Arc<ClientCert>>,
    ) -> Result<Credentials> {
        let client_id = match cfg.auth_method {
            AuthMethod::None => cfg.client_id.clone().unwrap_or_default(),
            _ => cfg
                .client_id
                .clone()
                .ok_or_else(|| Error::invalid("client_id is not set"))?,
        };
        if let Some(cert) = cert {
            if cfg.client_secret.is_some() || cfg.client_secret_file.is_some() {
                return Err(Error::invalid(format!(
                    "client_secret is set, but auth_method={} sends no secret (the TLS client \
                     certificate authenticates); unset client_secret and client_secret_file",
                    cfg.auth_method.name()
                )));
            }
            let secret = SecretSource::Certificate(cert.clone());
            return Ok(Credentials { client_id, secret });
        }
        // No stored credential: the workload grants' key seals, else token_cache_key_file.
        if matches!(
            cfg.auth_method,
            AuthMethod::ClientAssertion | AuthMethod::None
        ) {
            let secret = match (&cfg.workload.credentials_file, &cfg.client_key_file) {
                (Some(path), _) => SecretSource::ServiceAccount(path.clone()),
                (None, Some(path)) if cfg.workload.grant == GrantKind::JwtBearer => {
                    SecretSource::KeyFile(path.clone())
                }
                _ => SecretSource::Nothing,
            };
            return Ok(Credentials { client_id, secret });
        }
        // Checks the key (and certificate) now: a bad file is a configuration error.
        AssertionConfig::check(cfg)?;
        if cfg.auth_method == AuthMethod::PrivateKeyJwt {
            let path = cfg.client_key_file.clone().unwrap_or_default();
            return Ok(Credentials {
                client_id,
                secret: SecretSource::KeyFile(path),
            });
        }
        let secret = match (&cfg.client_secret, &cfg.client_secret_file) {
            (Some(_), Some(_)) => {
                return Err(Error::invalid(
                    "client_secret and client_secret_file are both set; set only one",
                ))
            }
            (Some(secret), None) => SecretSource::Value(secret.clone()),
            (None, Some(path)) => {
                let source = SecretSource::File(path.clone());
                source.read()?; // a missing file is a configuration error, found now
                source
            }
            (None, None) => {
                return Err(Error::invalid(
                    "client_secret is not set (nor client_secret_file)",
                ))
            }
        };
        Ok(Credentials { client_id, secret })
    }
}

impl SecretSource {
    /// The secret as of now; from a file, without its trailing newline.
    pub fn read(&self) -> Result<Secret> {
        match self {
            SecretSource::Value(secret) => Ok(secret.clone()),
            SecretSource::File(path) => {
                let shown = quote_prefix(path, 200);
                let mut text = std::fs::read_to_string(path)
                    .map(Secret::from)
                    .map_err(|e| {
                        Error::invalid(format!("client_secret_file: cannot read '{shown}': {e}"))
                    })?;
                text.trim_end_newline();
                if text.expose().is_empty() {
                    return Err(Error::invalid(format!(
                        "client_secret_file: '{shown}' is empty"
                    )));
                }
                Ok(text)
            }
            SecretSource::Certificate(cert) => {
                cert.reload()?;
                Ok(cert.sealing_secret())
            }
            SecretSource::KeyFile(path) => {
                let bytes = crate::jose::key::read_secret_file("client_key_file", path)?;
                let text = std::str::from_utf8(&bytes).map_err(|_| {
                    Error::invalid(format!(
                        "client_key_file: '{}' is not a PEM text file",
                        quote_prefix(path, 200)
                    ))
                })?;
                Ok(Secret::new(text))
            }
            SecretSource::ServiceAccount(path) => crate::token::credential_file::read_text(path),
            SecretSource::Nothing => Ok(Secret::default()),
        }
    }

    /// Whether it can seal shared-cache entries (it exists and does not rotate on its own).
    pub fn seals(&self) -> bool {
        !matches!(self, SecretSource::Nothing)
    }
}

impl TokenEndpoint {
    pub fn new(
        cfg: &EndpointSettings,
        transport: Transport,
        target: Target,
        credentials: Credentials,
    ) -> TokenEndpoint {
        let mut params = Vec::new();
        if let Some(audience) = &cfg.audience {
            params.push(("audience".to_owned(), audience.clone()));
        }
        for resource in &cfg.resource {
            params.push(("resource".to_owned(), resource.clone()));
        }
        params.extend(cfg.token_params.iter().cloned());
        TokenEndpoint {
            transport,
            target,
            scope: cfg.scope.clone(),
            params,
            auth_method: cfg.auth_method,
            assertion: AssertionConfig::settings(cfg),
            credentials: ArcSwap::from_pointee(credentials),
            max_retries: cfg.max_retries,
            max_retry_wait: cfg.max_retry_wait,
            refresh_skew: cfg.refresh_skew,
            default_expires_in: cfg.default_expires_in,
            events: cfg.events.clone(),
            dpop: None,
            grant: Grant::new(cfg),
            seal_key: None,
        }
    }

    /// Shared-cache entries are sealed with this key instead of the credential.
    pub fn with_seal_key(mut self, seal_key: Option<SealKey>) -> TokenEndpoint {
        self.seal_key = seal_key;
        self
    }

    /// Token requests carry a DPoP proof of `dpop`'s key.
    pub fn with_dpop(mut self, dpop: Option<Arc<Dpop>>) -> TokenEndpoint {
        self.dpop = dpop;
        self
    }

    /// Later token requests use these; a fetch in flight finishes with the old ones. Refused
    /// under private_key_jwt, whose key is rotated by replacing `client_key_file`.
    pub fn set_credentials(&self, credentials: Credentials) -> Result<()> {
        if self.auth_method == AuthMethod::PrivateKeyJwt {
            return Err(Error::invalid(
                "set_credentials: auth_method=private_key_jwt signs with client_key_file, not a \
                 secret; replace that file to rotate the key",
            ));
        }
        if matches!(
            self.auth_method,
            AuthMethod::ClientAssertion | AuthMethod::None
        ) {
            return Err(Error::invalid(format!(
                "set_credentials: auth_method={} uses no client secret",
                self.auth_method.name()
            )));
        }
        self.credentials.store(Arc::new(credentials));
        Ok(())
    }

    /// Where token requests go now: the configured URL, or the discovered endpoint (fetched
    /// first if not known yet).
    pub fn url(&self) -> Result<Url> {
        match &self.target {
            Target::Fixed(url) => Ok(url.clone()),
            Target::Discovered(discovery) => {
                let metadata = discovery.metadata(&self.transport)?;
                let supported = &metadata.token_endpoint_auth_methods_supported;
                let method = self.auth_method.name();
                // A federated assertion is advertised under the providers' own names.
                let checked = !matches!(
                    self.auth_method,
                    AuthMethod::ClientAssertion | AuthMethod::None
                );
                if checked && !supported.is_empty() && !supported.iter().any(|m| m == method) {
                    return Err(Error::invalid(format!(
                        "auth_method: issuer '{}' does not offer {method} (its \
                         token_endpoint_auth_methods_supported: {})",
                        quote_prefix(&metadata.issuer, 160),
                        quote_prefix(&supported.join(", "), 200)
                    )));
                }
                if let Some(dpop) = &self.dpop {
                    let algs = &metadata.dpop_signing_alg_values_supported;
                    let alg = dpop.alg().name();
                    if !algs.is_empty() && !algs.iter().any(|a| a == alg) {
                        return Err(Error::invalid(format!(
                            "dpop: issuer '{}' does not accept {alg} proofs (its \
                             dpop_signing_alg_values_supported: {}); give dpop_key_file a key \
                             it accepts",
                            quote_prefix(&metadata.issuer, 160),
                            quote_prefix(&algs.join(", "), 200)
                        )));
                    }
                }
                Ok(metadata
                    .token_endpoint_for(self.auth_method.presents_certificate())
                    .clone())
            }
        }
    }

    /// The discovered metadata, if `issuer` is used and discovery has succeeded.
    pub fn discovered(&self) -> Option<Arc<crate::token::discovery::Metadata>> {
        match &self.target {
            Target::Discovered(d) => d.known(),
            Target::Fixed(_) => None,
        }
    }

    /// The client id (with whose subject token, under token exchange) and the sealing key as
    /// of now (the shared cache's entry name and key).
    pub fn identity(&self) -> Result<(String, Secret)> {
        let credentials = self.credentials.load();
        let name = self.grant.cache_name(&credentials.client_id)?;
        let secret = match &self.seal_key {
            Some(key) => key.read()?,
            None => credentials.secret.read()?,
        };
        Ok((name, secret))
    }

    /// Whether the client authenticates with its TLS certificate (mutual TLS).
    pub fn uses_certificate(&self) -> bool {
        matches!(self.credentials.load().secret, SecretSource::Certificate(_))
    }

    pub fn client_id(&self) -> String {
        self.credentials.load().client_id.clone()
    }

    pub fn transport(&self) -> &Transport {
        &self.transport
    }

    /// What this request sends, from the credentials as of now.
    fn wire(&self) -> Result<Wire> {
        let url = self.url()?;
        if self.auth_method.presents_certificate() && url.scheme() != "https" {
            // A discovered endpoint (token_url itself was checked at session_new).
            return Err(Error::invalid(format!(
                "token endpoint {}: auth_method={} needs https to present the client certificate",
                redact(&url),
                self.auth_method.name()
            )));
        }
        let credentials = self.credentials.load_full();
        let secret = credentials.secret.read()?;
        let mut form = form_urlencoded::Serializer::new(String::new());
        self.grant.static_fields(&mut form);
        if let Some(scope) = self.scope.as_ref().filter(|_| self.grant.scope_in_form()) {
            form.append_pair("scope", scope);
        }
        for (name, value) in &self.params {
            form.append_pair(name, value);
        }
        let mut signer = None;
        let basic = match self.auth_method {
            AuthMethod::ClientSecretPost => {
                form.append_pair("client_id", &credentials.client_id);
                form.append_pair("client_secret", secret.expose());
                None
            }
            AuthMethod::ClientSecretBasic => Some(basic_auth(&credentials.client_id, &secret)),
            // RFC 8705 §2: the client_id in the body, the certificate in the handshake.
            AuthMethod::TlsClientAuth | AuthMethod::SelfSignedTlsClientAuth => {
                form.append_pair("client_id", &credentials.client_id);
                None
            }
            AuthMethod::PrivateKeyJwt | AuthMethod::ClientSecretJwt => {
                let assertion = self
                    .assertion
                    .as_ref()
                    .ok_or_else(|| Error::invalid("client assertion settings are missing"))?;
                signer = Some(assertion.signer(self.auth_method, &secret)?);
                form.append_pair("client_id", &credentials.client_id);
                form.append_pair("client_assertion_type", ASSERTION_TYPE);
                None
            }
            // The assertion file's content and type come per attempt (`Prepared::append`).
            AuthMethod::ClientAssertion => {
                form.append_pair("client_id", &credentials.client_id);
                None
            }
            // A public client names itself when it has an id (RFC 6749 §3.2.1).
            AuthMethod::None => {
                if !credentials.client_id.is_empty() && self.grant.sends_client_id() {
                    form.append_pair("client_id", &credentials.client_id);
                }
                None
            }
        };
        let scrubber = match self.auth_method {
            // The key file's text is not something a server could echo; the assertion is.
            // (Under client_assertion and none, the per-attempt tokens are added.)
            AuthMethod::PrivateKeyJwt | AuthMethod::ClientAssertion | AuthMethod::None => {
                Scrubber::default()
            }
            _ => Scrubber::for_credentials(&credentials.client_id, &secret),
        };
        Ok(Wire {
            aud: self.grant.audience(url.as_str()),
            extras: self.grant.prepare()?,
            url,
            form: Secret::from(form.finish()),
            basic,
            signer,
            dpop: self.dpop.clone(),
            client_id: credentials.client_id.clone(),
            scrubber,
        })
    }

    /// Fetches a new token, retrying connection failures, 5xx and 429 with exponential backoff
    /// and jitter, honouring `Retry-After` up to `max_retry_wait`.
    pub fn fetch(&self) -> Result<Token> {
        let wire = self.wire()?;
        let attempts = self.max_retries + 1;
        // RFC 9449 §8: a server asking for a DPoP nonce gets one resend, not counted as a
        // retry; a second request for one is an answer like any other.
        let mut nonce_resent = false;
        let mut attempt = 0;
        while attempt < attempts {
            attempt += 1;
            // The token files are read for every attempt (a failure is the configuration's:
            // INVALID_ARGUMENT naming the key, not worth a retry); assertions are signed for
            // every send of it (`Hooks::sign`).
            let mut sent = Attempt {
                wire: &wire,
                scrubber: wire.scrubber.clone(),
                files: Vec::new(),
            };
            sent.files = wire.extras.read_files(&mut sent.scrubber)?;
            let failure = match self.attempt(&wire, &mut sent) {
                Ok(token) => return Ok(token),
                Err(f) => f,
            };
            if failure.use_dpop_nonce && !nonce_resent {
                nonce_resent = true;
                attempt -= 1;
                continue;
            }
            let mut error = failure.error;
            // Scrubbed whole, then bounded: the order matters (see `Scrubber`). Events carry
            // this message too.
            error.message = one_line(&sent.scrubber.scrub(&error.message));
            if !failure.transient || attempt == attempts {
                if failure.transient && attempts > 1 {
                    error.message = one_line(&format!(
                        "{} (gave up after {attempts} attempts)",
                        error.message
                    ));
                }
                return Err(error);
            }
            let wait = self.wait_before_retry(attempt, failure.retry_after);
            self.events.emit(&Event {
                duration: wait,
                ..Event::failed(EventKind::Retry, None, &error, wait)
            });
            std::thread::sleep(wait);
        }
        unreachable!("the last attempt always returns")
    }

    fn attempt(&self, wire: &Wire, sent: &mut Attempt) -> std::result::Result<Token, Failure> {
        let obtained = Instant::now();
        let (status, retry_after, nonce_learned, body) =
            self.exchange(wire, sent).map_err(|error| Failure {
                // A timeout already spent the caller's budget; a connection failure may be a blip.
                transient: error.code == Code::CLOUDAUTH_ERR_NETWORK,
                error,
                retry_after: None,
                use_dpop_nonce: false,
            })?;
        let shown = redact(&wire.url);
        if status == StatusCode::OK {
            let body = self.grant.check_answer(body).map_err(|e| Failure {
                error: Error::new(
                    e.code,
                    format!("{STEP} {shown}: HTTP 200 but {}", e.message),
                )
                .with_status(200),
                transient: false,
                retry_after: None,
                use_dpop_nonce: false,
            })?;
            let grant = parse_grant(&body, self.default_expires_in).map_err(|e| Failure {
                error: Error::new(
                    e.code,
                    format!("{STEP} {shown}: HTTP 200 but {}", sent.quote(&e.message)),
                )
                .with_status(200),
                transient: false,
                retry_after: None,
                use_dpop_nonce: false,
            })?;
            let mut token = Token::new(
                grant.access_token,
                grant.expires_in,
                self.refresh_skew,
                obtained,
            )
            .map_err(|e| Failure {
                error: Error::new(e.code, format!("{STEP} {shown}: {}", e.message))
                    .with_status(200),
                transient: false,
                retry_after: None,
                use_dpop_nonce: false,
            })?;
            if let Some(refresh_in) = grant.refresh_in {
                // The server's own refresh hint (as MSAL honours it) only ever moves it earlier.
                token.refresh_at = token.refresh_at.min(obtained + refresh_in);
            }
            if grant.dpop {
                if self.dpop.is_none() {
                    return Err(Failure {
                        error: Error::new(
                            Code::CLOUDAUTH_ERR_BAD_TOKEN_RESPONSE,
                            format!(
                                "{STEP} {shown}: HTTP 200 but token_type is DPoP and dpop is \
                                 not enabled (set dpop=true)"
                            ),
                        )
                        .with_status(200),
                        transient: false,
                        retry_after: None,
                        use_dpop_nonce: false,
                    });
                }
                token.use_dpop_scheme();
            }
            return Ok(token);
        }
        let json = serde_json::from_slice::<serde_json::Value>(&body).ok();
        let said = match &json {
            Some(j) => sent.quote(&oauth_error_text(j)),
            None if body.is_empty() => "the body is empty".into(),
            None => format!(
                "the body is not JSON: '{}'",
                sent.quote(&String::from_utf8_lossy(&body))
            ),
        };
        let oauth_code = json
            .as_ref()
            .and_then(|j| j.get("error"))
            .and_then(serde_json::Value::as_str);
        let (code, transient, what) = match status.as_u16() {
            400 | 401 => (
                Code::CLOUDAUTH_ERR_AUTH_REJECTED,
                false,
                refusal(oauth_code),
            ),
            429 => (Code::CLOUDAUTH_ERR_TOKEN_ENDPOINT, true, "rate limited"),
            500..=599 => (Code::CLOUDAUTH_ERR_TOKEN_ENDPOINT, true, "server error"),
            _ => (
                Code::CLOUDAUTH_ERR_TOKEN_ENDPOINT,
                false,
                "unexpected status",
            ),
        };
        let use_dpop_nonce = status == StatusCode::BAD_REQUEST
            && oauth_code == Some("use_dpop_nonce")
            && nonce_learned;
        Err(Failure {
            use_dpop_nonce,
            error: Error::new(
                code,
                format!(
                    "{STEP} {shown} failed: HTTP {} ({what}), {said}",
                    status.as_u16()
                ),
            )
            .with_status(status.as_u16()),
            transient,
            retry_after,
        })
    }

    /// One POST to the token endpoint (`http::pipeline`: its resend signs anew): status,
    /// `Retry-After`, whether a DPoP nonce was learned, and the size-capped body.
    fn exchange(
        &self,
        wire: &Wire,
        sent: &mut Attempt,
    ) -> Result<(StatusCode, Option<Duration>, bool, Vec<u8>)> {
        let mut headers = HeaderMap::new();
        headers.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("application/x-www-form-urlencoded"),
        );
        headers.insert(ACCEPT, HeaderValue::from_static("application/json"));
        if let Some(basic) = &wire.basic {
            headers.insert(AUTHORIZATION, basic.clone());
        }
        let request = ApiRequest {
            method: Method::POST,
            url: wire.url.clone(),
            headers,
            body: crate::http::body::Payload::empty(),
        };
        let mut exchange = Exchange::new(
            &request,
            Role::TokenEndpoint,
            STEP,
            self.transport.timeout(),
        );
        let transport = &self.transport;
        let reply = transport.run(|clients| async move {
            match transport
                .send(&clients, &mut exchange, sent, MAX_TOKEN_RESPONSE_BYTES)
                .await?
            {
                Step::Done(reply) => Ok(reply),
                Step::Rejected => unreachable!("token requests are never rejected by a hook"),
            }
        })?;
        let retry_after = reply.headers.get(RETRY_AFTER).and_then(parse_retry_after);
        // Learned on success too: the next token request then needs no extra round trip.
        let nonce_learned = wire
            .dpop
            .as_ref()
            .is_some_and(|d| d.learn(&wire.url, &reply.headers));
        Ok((reply.status, retry_after, nonce_learned, reply.body))
    }

    fn wait_before_retry(&self, attempt: u32, retry_after: Option<Duration>) -> Duration {
        let wait = retry_after.unwrap_or_else(|| {
            let base = FIRST_BACKOFF.saturating_mul(1 << (attempt - 1).min(16));
            // "Equal jitter": at least half the backoff, so retries never bunch at zero.
            base / 2 + base.mul_f64(fastrand::f64() / 2.0)
        });
        wait.min(self.max_retry_wait)
    }
}

impl Hooks for Attempt<'_> {
    /// This send's body, with a fresh assertion under the JWT methods (a server refuses a
    /// reused `jti`), and with DPoP a fresh proof; the scrubber learns both.
    fn sign(
        &mut self,
        _method: &Method,
        _url: &Url,
        _credentials: bool,
        headers: &mut HeaderMap,
    ) -> Option<bytes::Bytes> {
        let wire = self.wire;
        if let Some(dpop) = &wire.dpop {
            let proof = dpop.proof("POST", &wire.url, None);
            self.scrubber.also_jws(proof.to_str().unwrap_or(""));
            headers.insert(&DPOP, proof);
        }
        let mut form = form_urlencoded::Serializer::new(wire.form.expose().to_owned());
        // The grant's fields: a fresh JWT-bearer assertion, this attempt's token files.
        wire.extras
            .append(&wire.aud, &self.files, &mut form, &mut self.scrubber);
        let Some(signer) = &wire.signer else {
            return Some(bytes::Bytes::from(form.finish()));
        };
        let assertion = signer.assertion(&wire.client_id, &wire.aud);
        self.scrubber.also_jws(assertion.expose());
        form.append_pair("client_assertion", assertion.expose());
        Some(bytes::Bytes::from(form.finish()))
    }
}

impl Attempt<'_> {
    /// Server text as a message quotes it: credentials scrubbed from the whole text first,
    /// then one line of at most [`QUOTED_CHARS`].
    fn quote(&self, server_text: &str) -> String {
        quote_prefix(&printable(&self.scrubber.scrub(server_text)), QUOTED_CHARS)
    }
}

/// What a 400/401 means. Only the RFC 6749 §5.2 codes about the client or the grant are a
/// refusal of the credentials; anything else (`invalid_token`, an HTML page, no body) is most
/// likely not a token endpoint at all, so the message points at `token_url`.
fn refusal(oauth_code: Option<&str>) -> &'static str {
    match oauth_code {
        Some("invalid_client" | "unauthorized_client" | "invalid_grant") => {
            "the server refused the client credentials"
        }
        Some("unsupported_grant_type") => "the server does not offer the client_credentials grant",
        Some("invalid_scope") => "the server refused the requested scope",
        _ => "not a refusal of the client credentials; is token_url the token endpoint?",
    }
}

/// RFC 6749 §2.3.1: id and secret are form-encoded before they are joined and base64-encoded,
/// so `:`, `+` and `%` in a secret survive.
fn basic_auth(client_id: &str, secret: &Secret) -> HeaderValue {
    use base64::Engine as _;
    let encode = |s: &str| form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    let pair = Secret::from(format!("{}:{}", encode(client_id), encode(secret.expose())));
    let mut value = HeaderValue::try_from(format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(pair.expose())
    ))
    .expect("base64 is always a valid header value");
    value.set_sensitive(true);
    value
}

/// `Retry-After` is either delay-seconds or an HTTP-date (RFC 9110 §10.2.3).
fn parse_retry_after(value: &HeaderValue) -> Option<Duration> {
    let text = value.to_str().ok()?.trim();
    if let Ok(seconds) = text.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let when = httpdate::parse_http_date(text).ok()?;
    Some(
        when.duration_since(SystemTime::now())
            .unwrap_or(Duration::ZERO),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_auth_form_encodes_before_base64() {
        use base64::Engine as _;
        let value = basic_auth("odd+id:%", &Secret::new("s3cr+t:with%odd chars&="));
        let b64 = value.to_str().unwrap().strip_prefix("Basic ").unwrap();
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(b64)
            .unwrap();
        assert_eq!(
            String::from_utf8(decoded).unwrap(),
            "odd%2Bid%3A%25:s3cr%2Bt%3Awith%25odd+chars%26%3D"
        );
    }

    #[test]
    fn retry_after_seconds_and_dates() {
        assert_eq!(
            parse_retry_after(&HeaderValue::from_static("7")),
            Some(Duration::from_secs(7))
        );
        let past = HeaderValue::from_static("Wed, 21 Oct 2015 07:28:00 GMT");
        assert_eq!(parse_retry_after(&past), Some(Duration::ZERO));
        assert_eq!(parse_retry_after(&HeaderValue::from_static("soon")), None);
    }
}
