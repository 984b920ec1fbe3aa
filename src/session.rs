//! A session: the credentials, the token cache and the HTTP clients, shared by every thread.
//!
//! The state lives in an `Arc<Inner>` so that work off the callers' threads (a background
//! refresh, an async operation) can hold it while it runs. Dropping the `Session` closes it:
//! the eager refresher (which holds only a `Weak`) stops, async operations still in flight end
//! with `CLOUDAUTH_ERR_CANCELLED`, and no token request starts afterwards.

use crate::config::{Config, RefreshMode};
use crate::dpop::{self, Dpop, DPOP};
use crate::error::{Code, Error, Result};
use crate::events::{Event, EventKind, Events, Reason};
use crate::fork;
use crate::http::body::{BodySource, Payload, Streamed};
use crate::http::client_cert::ClientCert;
use crate::http::clients::{Clients, Role};
use crate::http::header::{HeaderMap, HeaderValue, AUTHORIZATION};
use crate::http::pipeline::{BodySink, Exchange, Hooks, Step, Verdict};
use crate::http::request::{resolve, ApiRequest, Response};
use crate::http::transport::{HttpSettings, Transport};
use crate::http::url_policy::{check_secure, parse_http_url};
use crate::http::{Method, StatusCode};
use crate::oauth::{AuthMethod, GrantKind};
use crate::runtime;
use crate::secret::{Scrubber, Secret};
use crate::stats::{Counters, Stats};
use crate::token::cache::{Source, TokenCache};
use crate::token::endpoint::{Credentials, SecretSource, Target, TokenEndpoint};
use crate::token::refresh;
use crate::token::shared::seal_key::SealKey;
use crate::token::shared::{CacheReport, CacheSettings, Reporter, SharedCache};
use crate::token::{EndpointSettings, Token};
use std::ffi::{CStr, CString};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};
use url::Url;

const STEP: &str = "request to";

pub struct Session {
    inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) endpoint: TokenEndpoint,
    pub(crate) cache: TokenCache,
    /// The file or Redis cache behind `cache`, if configured (`token_cache`).
    shared: Option<SharedCache>,
    api: Transport,
    /// With `dpop=true`: every API request carries a proof of this key.
    dpop: Option<Arc<Dpop>>,
    base_url: String,
    /// `base_url`'s origin, "scheme://host[:port]", NUL-terminated for the C API's accessor.
    origin: CString,
    allow_insecure_http: bool,
    max_response_bytes: usize,
    pub(crate) mode: RefreshMode,
    pub(crate) counters: Arc<Counters>,
    events: Events,
    /// True once the session is freed; async operations and the refresher watch it.
    pub(crate) closed: tokio::sync::watch::Sender<bool>,
    /// The fork generation (+1) whose eager refresher runs, 0 for none.
    pub(crate) refresher: AtomicU64,
    pub(crate) this: Weak<Inner>,
}

impl Session {
    /// Checks the config (credentials present, token URL safe) and builds the clients. Nothing
    /// is sent yet: the first token is fetched on first use.
    pub fn new(cfg: &Config) -> Result<Session> {
        // Each layer below gets settings of its own, built here; the keys that must fit
        // together are checked here too (the workload keys in src/token/grant.rs).
        let token = crate::token::grant::resolve(&endpoint_settings(cfg))?;
        let counters = Arc::new(Counters::default());
        let cert = client_cert(&token)?;
        let credentials = Credentials::from_settings(&token, cert.as_ref())?;
        let dpop = match (cfg.dpop, &cfg.dpop_key_file) {
            (true, key_file) => Some(Arc::new(Dpop::new(key_file.as_deref())?)),
            (false, Some(_)) => {
                return Err(Error::invalid(
                    "dpop_key_file is set but dpop is not; set dpop=true",
                ))
            }
            (false, None) => None,
        };
        // A token bound to a key only this session has (a generated DPoP key) is useless to
        // any other process: no shared cache then. With a pinned key, the entry's name
        // includes the key's thumbprint.
        let mut seal_key = None;
        let shared = match dpop.as_deref() {
            Some(d) if !d.pinned() => None,
            d => {
                // Without a stable credential, a key of its own seals (token_cache_key_file).
                let cache = cache_settings(cfg, &token);
                seal_key = SealKey::resolve(&cache, credentials.secret.seals())?;
                let sealing = match &seal_key {
                    Some(key) => key.read()?,
                    None => credentials.secret.read()?,
                };
                SharedCache::new(
                    &cache,
                    d.map(Dpop::thumbprint),
                    sealing.expose().as_bytes(),
                    shared_reporter(&counters, &cfg.events),
                )?
            }
        };
        let target = Target::from_settings(&token)?;
        let base_url = parse_http_url("base_url", &cfg.base_url)?;
        let origin = CString::new(base_url.origin().ascii_serialization())
            .map_err(|_| Error::invalid("base_url contains NUL"))?;
        let http = HttpSettings {
            user_agent: cfg.user_agent.clone(),
            timeout: cfg.timeout,
            connect_timeout: cfg.connect_timeout,
            ca_file: cfg.ca_file.clone(),
            proxy: cfg.proxy.clone(),
            allow_insecure_http: cfg.allow_insecure_http,
            base_url,
        };
        let (token_transport, api) = Transport::for_token_and_api(&http, cert, &counters)?;
        let endpoint = TokenEndpoint::new(&token, token_transport, target, credentials)
            .with_dpop(dpop.clone())
            .with_seal_key(seal_key);
        let inner = Arc::new_cyclic(|this| Inner {
            endpoint,
            cache: TokenCache::default(),
            shared,
            api,
            dpop,
            base_url: cfg.base_url.clone(),
            origin,
            allow_insecure_http: cfg.allow_insecure_http,
            max_response_bytes: cfg.max_response_bytes,
            mode: cfg.refresh_mode,
            counters,
            events: cfg.events.clone(),
            closed: tokio::sync::watch::channel(false).0,
            refresher: AtomicU64::new(0),
            this: this.clone(),
        });
        Ok(Session { inner })
    }

    pub(crate) fn inner(&self) -> &Arc<Inner> {
        &self.inner
    }

    /// Runs `f` on the current valid token, fetching or refreshing it first when needed.
    pub fn with_token<R>(&self, f: impl FnOnce(&str) -> R) -> Result<R> {
        self.inner.cache.with_token(&*self.inner, |t| f(t.value()))
    }

    /// Copies a fresh cached token and its NUL into `buf` if one fits in `cap` bytes; its
    /// length, or `None` for anything else (the full path then decides and explains).
    ///
    /// # Safety
    /// `buf` has `cap` writable bytes.
    #[inline]
    pub unsafe fn copy_fresh_token(&self, buf: *mut u8, cap: usize) -> Option<usize> {
        self.inner.cache.copy_fresh(buf, cap)
    }

    /// The token if one is usable without waiting; otherwise `CLOUDAUTH_ERR_WOULD_BLOCK`, with
    /// a fetch started on a library thread.
    pub fn token_cached<R>(&self, f: impl FnOnce(&str) -> R) -> Result<R> {
        match self.inner.cache.usable_now(&*self.inner) {
            Some(token) => Ok(f(token.value())),
            None => Err(crate::token::cache::would_block()),
        }
    }

    /// How long the current valid token (fetched first if needed) has before it expires.
    pub fn token_expires_in(&self) -> Result<Duration> {
        self.inner.cache.with_token(&*self.inner, |t| {
            t.expires_at.saturating_duration_since(Instant::now())
        })
    }

    pub fn invalidate(&self) {
        // The next use must fetch a new token, not read this one back from the shared cache.
        if let Some(current) = self.inner.cache.usable() {
            self.inner.reject_shared(current.value());
        }
        self.inner.cache.invalidate(Reason::Invalidated);
    }

    /// Drops the cached token only if it is `rejected` (a token a server answered 401 to).
    pub fn invalidate_token(&self, rejected: &str) {
        self.inner
            .cache
            .invalidate_if(Reason::Invalidated, |current| current.value() == rejected);
        self.inner.reject_shared(rejected);
    }

    /// The origin the token is meant for, `base_url`'s: "scheme://host[:port]" (host in
    /// lower case and IDNA ASCII, port only when not the scheme's default), as URL parsing
    /// serializes it. Adapters of other HTTP clients add the token only to requests for it.
    pub fn origin(&self) -> &CStr {
        &self.inner.origin
    }

    /// Whether a request to `target` may carry the token: the check [`Session::request`]
    /// makes, for bindings whose own HTTP client sends the request.
    pub fn check_url(&self, target: &str) -> Result<()> {
        let url = resolve(target, &self.inner.base_url)?;
        check_secure("request URL", &url, self.inner.allow_insecure_http)
    }

    /// Later token requests use these credentials; the current token stays until it expires
    /// or is invalidated. The old secret is zeroed once no fetch in flight uses it.
    pub fn set_credentials(&self, client_id: &str, client_secret: &str) -> Result<()> {
        if client_id.is_empty() || client_secret.is_empty() {
            return Err(Error::invalid(
                "set_credentials: client_id and client_secret must not be empty",
            ));
        }
        if self.inner.endpoint.uses_certificate() {
            return Err(Error::invalid(
                "set_credentials: this session authenticates with its TLS client certificate \
                 and sends no secret; replace client_cert_file and client_key_file to rotate it",
            ));
        }
        self.inner.endpoint.set_credentials(Credentials {
            client_id: client_id.to_owned(),
            secret: SecretSource::Value(Secret::new(client_secret)),
        })?;
        self.inner.cache.note_reason(Reason::CredentialsChanged);
        Ok(())
    }

    pub fn stats(&self) -> Stats {
        let left = self.inner.cache.usable().map_or(-1, |t| {
            t.expires_at
                .saturating_duration_since(Instant::now())
                .as_millis() as i64
        });
        self.inner.counters.snapshot(left)
    }

    /// Sends an authorized request. Any HTTP status is a response; on a 401 to a hop that
    /// carried the token, the token is dropped (if still current) and that hop is sent once
    /// more with a fresh one (`http::pipeline`).
    pub fn request<'a>(
        &self,
        method: &str,
        target: &str,
        headers: impl IntoIterator<Item = &'a str>,
        body: &[u8],
    ) -> Result<Response> {
        let inner = &*self.inner;
        let request = inner.api_request(method, target, headers, body)?;
        inner.ensure_refresher();
        let mut exchange = inner.exchange(&request);
        let token = inner.cache.with_token(inner, Arc::clone)?;
        let sent = inner
            .api
            .run(|client| inner.send(client, &mut exchange, &token, true))?;
        if let Some(response) = sent {
            return Ok(response);
        }
        // The token fetch runs outside the runtime (it has its own), then the refused hop goes
        // again, in the same exchange.
        let fresh = inner.cache.with_token(inner, Arc::clone)?;
        inner
            .api
            .run(|client| inner.send(client, &mut exchange, &fresh, false))?
            .ok_or_else(|| Error::new(Code::CLOUDAUTH_ERR_INTERNAL, "a second 401 resend"))
    }
}

impl Session {
    /// [`Session::request`] with the answer streamed: the final answer's status and headers go
    /// to `sink.head`, then its body piece by piece to `sink.data` (at most
    /// `max_response_bytes` in all, within `timeout_ms` for the whole exchange); the returned
    /// response has an empty body. An error from the sink ends the exchange with that error.
    pub fn request_stream<'a>(
        &self,
        method: &str,
        target: &str,
        headers: impl IntoIterator<Item = &'a str>,
        body: &[u8],
        sink: &mut dyn BodySink,
    ) -> Result<Response> {
        let request = self.inner.api_request(method, target, headers, body)?;
        self.send_request(&request, Some(sink))
    }

    /// [`Session::request`] with the body read from `source` while the request is written
    /// (`Content-Length` when it knows its length, chunked when not), and the answer streamed
    /// to `sink` when there is one. A resend (a 401 to the token, a 307/308, a connection
    /// that failed under the request) rewinds the source first; one that cannot be rewound is
    /// sent once, and that answer (or error) is the caller's. The source is let go of before
    /// this returns.
    pub fn request_source<'a>(
        &self,
        method: &str,
        target: &str,
        headers: impl IntoIterator<Item = &'a str>,
        source: Box<dyn BodySource>,
        sink: Option<&mut dyn BodySink>,
    ) -> Result<Response> {
        let mut request = self.inner.api_request(method, target, headers, &[])?;
        let streamed = Streamed::new(source);
        request.body = Payload::Streamed(streamed.clone());
        let result = self.send_request(&request, sink);
        streamed.close();
        result
    }

    /// Sends `request` with the token, and once more after a 401 to it (see [`Session::request`]).
    fn send_request(
        &self,
        request: &ApiRequest,
        mut sink: Option<&mut dyn BodySink>,
    ) -> Result<Response> {
        let inner = &*self.inner;
        inner.ensure_refresher();
        let mut exchange = inner.exchange(request);
        let token = inner.cache.with_token(inner, Arc::clone)?;
        let sent = inner.api.run(|client| {
            let sink = sink.as_mut().map(|s| &mut **s as &mut dyn BodySink);
            inner.send_to(client, &mut exchange, &token, true, sink)
        })?;
        if let Some(response) = sent {
            return Ok(response);
        }
        let fresh = inner.cache.with_token(inner, Arc::clone)?;
        inner
            .api
            .run(|client| inner.send_to(client, &mut exchange, &fresh, false, sink))?
            .ok_or_else(|| Error::new(Code::CLOUDAUTH_ERR_INTERNAL, "a second 401 resend"))
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        self.inner.closed.send_replace(true);
    }
}

impl Inner {
    pub(crate) fn api_request<'a>(
        &self,
        method: &str,
        target: &str,
        headers: impl IntoIterator<Item = &'a str>,
        body: &[u8],
    ) -> Result<ApiRequest> {
        ApiRequest::new(
            method,
            target,
            &self.base_url,
            self.allow_insecure_http,
            headers,
            body,
        )
    }

    pub(crate) fn is_closed(&self) -> bool {
        *self.closed.borrow()
    }

    /// The API transport, for runtimes with client pools of their own (`ops::driven`).
    pub(crate) fn api_transport(&self) -> &Transport {
        &self.api
    }

    /// The API clients for the library runtime (async operations).
    pub(crate) fn library_api_client(&self) -> Result<Clients> {
        self.api.library_client()
    }

    /// The exchange `request` starts, bounded by `timeout_ms` from now.
    pub(crate) fn exchange<'a>(&self, request: &'a ApiRequest) -> Exchange<'a> {
        Exchange::new(request, Role::Api, STEP, self.api.timeout())
    }

    /// Sends `exchange` with `token` and reads the whole response; `None` when a hop that
    /// carried the token got a 401 and `may_reject`: the token has been dropped, and the
    /// caller sends the same exchange again with a fresh one (the refused hop goes again).
    pub(crate) async fn send(
        &self,
        client: Clients,
        exchange: &mut Exchange<'_>,
        token: &Token,
        may_reject: bool,
    ) -> Result<Option<Response>> {
        self.send_to(client, exchange, token, may_reject, None)
            .await
    }

    /// [`Inner::send`], the final answer's body going to `sink` when there is one.
    async fn send_to(
        &self,
        client: Clients,
        exchange: &mut Exchange<'_>,
        token: &Token,
        may_reject: bool,
        sink: Option<&mut dyn BodySink>,
    ) -> Result<Option<Response>> {
        let mut hooks = Authorize {
            inner: self,
            token,
            may_reject,
            sink,
            // A hostile API server knows the token and may put it where a message quotes it
            // (a redirect target's path, say); the same goes for DPoP proofs. (Collected, not
            // scrubbed, on the way: a Bearer request allocates nothing for it.)
            proofs: Vec::new(),
        };
        let sent = self
            .api
            .send(&client, exchange, &mut hooks, self.max_response_bytes)
            .await;
        match sent {
            Ok(Step::Done(reply)) => Ok(Some(Response {
                status: reply.status.as_u16(),
                headers: reply.headers,
                body: reply.body,
            })),
            Ok(Step::Rejected) => {
                self.resending();
                Ok(None)
            }
            Err(mut e) => {
                let mut scrubber = Scrubber::for_token(token.value());
                for proof in &hooks.proofs {
                    scrubber.also_jws(proof.to_str().unwrap_or(""));
                }
                e.message = scrubber.scrub(&e.message);
                Err(self.api.name_proxy(e))
            }
        }
    }

    /// After a 401 to `token`: drops it (if still current), here and in the shared cache,
    /// whether or not the request can be sent again.
    fn reject(&self, token: &Token) -> bool {
        self.cache
            .invalidate_if(Reason::Unauthorized, |current| std::ptr::eq(current, token));
        self.reject_shared(token.value());
        self.events.emit(&Event {
            kind: EventKind::Unauthorized,
            reason: None,
            result: Code::CLOUDAUTH_OK,
            http_status: 401,
            duration: Duration::ZERO,
            message: "the API answered 401; the token was dropped",
        });
        true
    }

    /// The refused hop goes again with a fresh token.
    fn resending(&self) {
        Counters::bump(&self.counters.unauthorized_resends);
    }

    /// Drops `rejected` from the shared cache too, so other processes stop using it. May block
    /// up to token_cache_timeout_ms: on a library thread it tells the runtime so.
    fn reject_shared(&self, rejected: &str) {
        if let Some(shared) = &self.shared {
            if runtime::on_library_thread() {
                tokio::task::block_in_place(|| shared.remove_if(rejected));
            } else {
                shared.remove_if(rejected);
            }
        }
    }

    /// In eager mode, makes sure this process runs the session's refresher (a child of fork()
    /// starts its own here, on its first request or token fetch).
    pub(crate) fn ensure_refresher(&self) {
        if self.mode != RefreshMode::Eager || self.is_closed() {
            return;
        }
        let want = fork::generation() + 1;
        let running = self.refresher.load(Ordering::Acquire);
        if running == want
            || self
                .refresher
                .compare_exchange(running, want, Ordering::AcqRel, Ordering::Acquire)
                .is_err()
        {
            return;
        }
        if !refresh::start_eager(self.this.clone(), self.closed.subscribe()) {
            self.refresher.store(0, Ordering::Release);
        }
    }
}

/// What an API request's hops carry (the token, a DPoP proof per send) and what an answer to
/// one that carried them means.
struct Authorize<'a, 's> {
    inner: &'a Inner,
    token: &'a Token,
    /// False on the resend after a 401: a second 401 is the caller's answer.
    may_reject: bool,
    /// Every proof sent, for scrubbing messages.
    proofs: Vec<HeaderValue>,
    /// Where the final answer's body goes, when the caller streams it.
    sink: Option<&'s mut dyn BodySink>,
}

impl Hooks for Authorize<'_, '_> {
    fn sign(
        &mut self,
        method: &Method,
        url: &Url,
        credentials: bool,
        headers: &mut HeaderMap,
    ) -> Option<bytes::Bytes> {
        if credentials {
            headers.insert(AUTHORIZATION, self.token.bearer().clone());
            if let Some(dpop) = &self.inner.dpop {
                // Each send its own proof (`jti`), naming its own hop.
                let proof = dpop.proof(method.as_str(), url, Some(self.token.ath()));
                self.proofs.push(proof.clone());
                headers.insert(&DPOP, proof);
            }
        }
        None
    }

    fn answered(
        &mut self,
        url: &Url,
        credentials: bool,
        status: StatusCode,
        headers: &HeaderMap,
    ) -> Verdict {
        if !credentials {
            // From a server that never saw the token: says nothing about it.
            return Verdict::Accept;
        }
        // A nonce is learned from any answer of the server the proof went to; a 401 that
        // asks for one is not a rejection of the token (RFC 9449 §9).
        if let Some(dpop) = &self.inner.dpop {
            if dpop.learn(url, headers)
                && status == StatusCode::UNAUTHORIZED
                && dpop::asks_for_nonce(headers)
            {
                return Verdict::ResendHop;
            }
        }
        if status == StatusCode::UNAUTHORIZED && self.may_reject && self.inner.reject(self.token) {
            return Verdict::Rejected;
        }
        Verdict::Accept
    }

    fn sink(&mut self) -> Option<&mut dyn BodySink> {
        match &mut self.sink {
            Some(sink) => Some(&mut **sink),
            None => None,
        }
    }
}

impl refresh::Refreshable for Inner {
    fn cache(&self) -> &TokenCache {
        &self.cache
    }

    fn is_closed(&self) -> bool {
        Inner::is_closed(self)
    }
}

impl Source for Inner {
    fn fetch(&self, _reason: Reason) -> Result<Token> {
        let Some(shared) = &self.shared else {
            return self.endpoint.fetch();
        };
        match self.endpoint.identity() {
            Ok((client_id, secret)) => {
                shared.use_credentials(&client_id, secret.expose().as_bytes())
            }
            // The secret file is unreadable: the fetch reports it.
            Err(_) => return self.endpoint.fetch(),
        }
        shared.get_or_fetch(|| self.endpoint.fetch())
    }

    fn fetched(&self, reason: Reason, result: &Result<Arc<Token>>, took: Duration) {
        match result {
            Ok(_) => {
                if runtime::on_library_thread()
                    && matches!(reason, Reason::RefreshAhead | Reason::Expired)
                {
                    Counters::bump(&self.counters.background_refreshes);
                }
                self.events.emit(&Event {
                    kind: EventKind::TokenFetched,
                    reason: Some(reason),
                    result: Code::CLOUDAUTH_OK,
                    http_status: 200,
                    duration: took,
                    message: "",
                });
                self.ensure_refresher();
            }
            Err(error) => {
                Counters::bump(&self.counters.token_failures);
                self.events.emit(&Event::failed(
                    EventKind::TokenFetchFailed,
                    Some(reason),
                    error,
                    took,
                ));
            }
        }
    }

    fn refreshes_in_background(&self) -> bool {
        self.mode != RefreshMode::Inline
    }

    fn spawn_fetch(&self) -> bool {
        match self.this.upgrade() {
            Some(inner) => refresh::spawn_fetch(inner),
            None => false,
        }
    }
}

/// The token endpoint's settings, as set. `auth_method` unset is `client_secret_post`, except
/// for a workload grant without a client secret: `none`.
pub fn endpoint_settings(cfg: &Config) -> EndpointSettings {
    let has_secret = cfg.client_secret.is_some() || cfg.client_secret_file.is_some();
    let auth_method = cfg.auth_method.unwrap_or(
        match cfg.workload.grant != GrantKind::ClientCredentials && !has_secret {
            true => AuthMethod::None,
            false => AuthMethod::ClientSecretPost,
        },
    );
    EndpointSettings {
        client_id: cfg.client_id.clone(),
        client_secret: cfg.client_secret.clone(),
        client_secret_file: cfg.client_secret_file.clone(),
        token_url: cfg.token_url.clone(),
        issuer: cfg.issuer.clone(),
        scope: cfg.scope.clone(),
        auth_method,
        client_key_file: cfg.client_key_file.clone(),
        client_key_id: cfg.client_key_id.clone(),
        client_assertion_alg: cfg.client_assertion_alg,
        client_cert_file: cfg.client_cert_file.clone(),
        audience: cfg.audience.clone(),
        resource: cfg.resource.clone(),
        token_params: cfg.token_params.clone(),
        allow_insecure_http: cfg.allow_insecure_http,
        max_retries: cfg.max_retries,
        max_retry_wait: cfg.max_retry_wait,
        refresh_skew: cfg.refresh_skew,
        default_expires_in: cfg.default_expires_in,
        workload: cfg.workload.clone(),
        events: cfg.events.clone(),
    }
}

/// The shared cache's settings, for the token request `endpoint` (as the session resolved it).
pub fn cache_settings(cfg: &Config, endpoint: &EndpointSettings) -> CacheSettings {
    CacheSettings {
        token_cache: cfg.token_cache,
        token_cache_dir: cfg.token_cache_dir.clone(),
        redis_url: cfg.redis_url.clone(),
        token_cache_timeout: cfg.token_cache_timeout,
        ca_file: cfg.ca_file.clone(),
        dpop: cfg.dpop,
        timeout: cfg.timeout,
        endpoint: endpoint.clone(),
    }
}

/// Both settings from keys set on a default `Config` (for the token layer's unit tests).
#[cfg(test)]
pub(crate) fn settings_of(pairs: &[(&str, &str)]) -> (EndpointSettings, CacheSettings) {
    let mut c = Config::default();
    for (k, v) in pairs {
        c.set(k, v).unwrap();
    }
    let endpoint = endpoint_settings(&c);
    let cache = cache_settings(&c, &endpoint);
    (endpoint, cache)
}

/// `None` unless `auth_method` is one of the two mTLS methods; then both files must be set,
/// readable and hold a certificate and the key that matches it, and `token_url` be https.
fn client_cert(cfg: &EndpointSettings) -> Result<Option<Arc<ClientCert>>> {
    if !cfg.auth_method.presents_certificate() {
        return Ok(None);
    }
    let method = cfg.auth_method.name();
    let token_url = parse_http_url("token_url", cfg.token_url())?;
    if token_url.scheme() != "https" {
        return Err(Error::invalid(format!(
            "token_url: auth_method={method} authenticates with a TLS client certificate, \
             which plain http cannot carry; use an https token_url (it is {})",
            crate::http::url_policy::redact(&token_url)
        )));
    }
    let path = |set: &Option<String>, key: &str| {
        set.clone().ok_or_else(|| {
            Error::invalid(format!("{key} is not set (auth_method={method} needs it)"))
        })
    };
    let cert_path = path(&cfg.client_cert_file, "client_cert_file")?;
    let key_path = path(&cfg.client_key_file, "client_key_file")?;
    ClientCert::load(cert_path, key_path).map(Some)
}

/// Shared-cache reports become the session's counters and, once per outage, an event.
fn shared_reporter(counters: &Arc<Counters>, events: &Events) -> Reporter {
    let (counters, events) = (counters.clone(), events.clone());
    Arc::new(move |report| match report {
        CacheReport::Hit => Counters::bump(&counters.shared_cache_hits),
        CacheReport::Error {
            message,
            outage_started,
        } => {
            Counters::bump(&counters.shared_cache_errors);
            if outage_started {
                events.emit(&Event {
                    kind: EventKind::CacheUnavailable,
                    reason: None,
                    result: Code::CLOUDAUTH_OK,
                    http_status: 0,
                    duration: Duration::ZERO,
                    message: &message,
                });
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(pairs: &[(&str, &str)]) -> Config {
        let mut c = Config::default();
        for (k, v) in pairs {
            c.set(k, v).unwrap();
        }
        c
    }

    #[test]
    fn only_the_mtls_methods_load_a_certificate() {
        // private_key_jwt uses client_cert_file for x5t#S256 only: nothing is presented.
        let c = cfg(&[
            ("auth_method", "client_secret_post"),
            ("client_cert_file", "/nonexistent.pem"),
        ]);
        assert!(client_cert(&endpoint_settings(&c)).unwrap().is_none());
    }

    #[test]
    fn missing_settings_and_plain_http_name_the_key() {
        for (pairs, starts) in [
            (
                vec![("auth_method", "tls_client_auth")],
                "client_cert_file is not set",
            ),
            (
                vec![
                    ("auth_method", "self_signed_tls_client_auth"),
                    ("client_cert_file", "/c.pem"),
                ],
                "client_key_file is not set",
            ),
            (
                vec![
                    ("auth_method", "tls_client_auth"),
                    ("token_url", "http://127.0.0.1:9/token"),
                ],
                "token_url: ",
            ),
            (
                vec![
                    ("auth_method", "tls_client_auth"),
                    ("client_cert_file", "/nonexistent/c.pem"),
                    ("client_key_file", "/nonexistent/c.key"),
                ],
                "client_cert_file: cannot read '/nonexistent/c.pem'",
            ),
        ] {
            let err = client_cert(&endpoint_settings(&cfg(&pairs))).err().unwrap();
            assert_eq!(err.code, Code::CLOUDAUTH_ERR_INVALID_ARGUMENT);
            assert!(err.message.starts_with(starts), "{}", err.message);
        }
    }
}
