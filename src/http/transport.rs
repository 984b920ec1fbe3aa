//! The HTTP clients of a session. Connections belong to the runtime that opened them
//! (`runtime`), so each calling thread keeps its own `reqwest::Client` (and connection pool) per
//! transport, built on first use, and the library runtime has one more, shared by its threads.
//! Clients are [`Owned`] by their fork generation: a child of fork() never touches a pooled
//! socket of the parent's.

use crate::error::{Code, Error, Result};
use crate::fork::Owned;
use crate::http::client_cert::ClientCert;
use crate::http::clients::{Answer, Bound, Clients, SendError};
use crate::http::direct::{self, Direct};
use crate::http::url_policy::{redact, redact_str};
use crate::runtime;
use crate::stats::Counters;
use arc_swap::ArcSwapOption;
use reqwest::{redirect, Client};
use rustls::pki_types::{pem::PemObject, CertificateDer};
use rustls::RootCertStore;
use std::cell::RefCell;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};
use url::Url;

/// What the session's HTTP layer is built from: its own typed settings, taken from the
/// configuration when the session is built (`session`); nothing here sees `Config`.
#[derive(Clone, Debug)]
pub struct HttpSettings {
    pub user_agent: String,
    /// `timeout_ms`: one whole exchange.
    pub timeout: Duration,
    /// `connect_timeout_ms`: each connection's TCP connect and TLS handshake.
    pub connect_timeout: Duration,
    pub ca_file: Option<String>,
    /// `None`: the environment's (reqwest reads it); `"none"` or empty: no proxy.
    pub proxy: Option<String>,
    pub allow_insecure_http: bool,
    /// The API's origin (`base_url`), checked already.
    pub base_url: Url,
}

/// One kind of client (token endpoint, or API) of one session.
pub struct Transport {
    id: u64,
    /// Per-thread clients hold a `Weak` of this, so they can tell when their session is gone.
    alive: Arc<()>,
    settings: Settings,
    /// With mutual TLS, the client that presents the certificate (`clients`): on the API
    /// side for the session's origin only, on the token side for the token request;
    /// `settings` builds the one for everything else. Redirects are `pipeline`'s: no client
    /// follows one itself.
    bound: Option<Settings>,
    /// The library runtime's clients, shared by its threads, and the certificate generation
    /// they were built with.
    library_client: ArcSwapOption<Owned<(Clients, u64)>>,
    counters: Arc<Counters>,
    /// The counter of requests sent through this transport (token or API requests).
    sent: fn(&Counters) -> &AtomicU64,
}

/// What a per-thread client is built from. Files are read once, when the session is made.
#[derive(Clone)]
struct Settings {
    user_agent: String,
    timeout: Duration,
    connect_timeout: Duration,
    /// Built once per session; the system's roots are loaded at the first TLS connection.
    tls: rustls::ClientConfig,
    proxy: Option<String>,
    allow_insecure_http: bool,
    /// Whether `pipeline` follows redirects for this transport's exchanges.
    follow_redirects: bool,
    /// The client certificate this client presents (mutual TLS).
    cert: Option<Arc<ClientCert>>,
    /// For the API's client that presents the certificate: the only origin it is used for.
    only_origin: Option<Arc<url::Origin>>,
    /// The API's origin when its requests may skip reqwest (`direct`): no proxy and no client
    /// certificate.
    direct_origin: Option<Url>,
}

struct CachedClient {
    transport: u64,
    alive: Weak<()>,
    clients: Clients,
    /// The client certificate's generation the clients were built with.
    generation: u64,
}

/// The clients of one runtime, one set per transport, each built on first use.
#[derive(Default)]
pub struct ClientPool(Vec<CachedClient>);

impl ClientPool {
    /// `transport`'s clients in this pool, built on first use and again when its client
    /// certificate changed.
    pub fn client(&mut self, transport: &Transport) -> Result<Clients> {
        // The clients (and idle connections) of sessions freed since go at this call, whatever
        // session it is for.
        if self.0.iter().any(|c| c.alive.strong_count() == 0) {
            self.0.retain(|c| c.alive.strong_count() > 0);
        }
        let generation = transport.generation();
        if let Some(c) = self.0.iter().find(|c| c.transport == transport.id) {
            if c.generation == generation {
                return Ok(c.clients.clone());
            }
        }
        // This transport's own, when its certificate changed.
        self.0.retain(|c| c.transport != transport.id);
        let built = transport.build(false)?;
        self.0.push(CachedClient {
            transport: transport.id,
            alive: Arc::downgrade(&transport.alive),
            clients: built.clone(),
            generation,
        });
        Ok(built)
    }
}

thread_local! {
    static CLIENTS: RefCell<Option<Owned<ClientPool>>> = const { RefCell::new(None) };
}

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

impl Transport {
    /// The session's two transports, sharing one TLS setup: the token endpoint's, which never
    /// follows a redirect (a POST carrying the secret goes to `token_url` and nowhere else), and
    /// the API's, which follows them (`pipeline`). With `cert` (mutual TLS) the token
    /// endpoint's client presents it, and so does the API's client for `base_url`'s origin,
    /// and no other.
    pub fn for_token_and_api(
        cfg: &HttpSettings,
        cert: Option<Arc<ClientCert>>,
        counters: &Arc<Counters>,
    ) -> Result<(Transport, Transport)> {
        let settings = Settings {
            user_agent: cfg.user_agent.clone(),
            timeout: cfg.timeout,
            connect_timeout: cfg.connect_timeout,
            tls: tls_config(cfg.ca_file.as_deref())?,
            proxy: cfg.proxy.clone(),
            allow_insecure_http: cfg.allow_insecure_http,
            follow_redirects: false,
            cert: None,
            only_origin: None,
            direct_origin: None,
        };
        let api = Settings {
            follow_redirects: true,
            direct_origin: if cert.is_none() && no_proxy(cfg.proxy.as_deref()) {
                Some(cfg.base_url.clone())
            } else {
                None
            },
            ..settings.clone()
        };
        let bound = cert.as_ref().map(|cert| Settings {
            cert: Some(cert.clone()),
            direct_origin: None,
            only_origin: Some(Arc::new(cfg.base_url.origin())),
            ..api.clone()
        });
        let token_bound = cert.map(|cert| Settings {
            cert: Some(cert),
            ..settings.clone()
        });
        let token = Transport::new(settings, token_bound, counters, |c| &c.token_requests);
        let api = Transport::new(api, bound, counters, |c| &c.api_requests);
        // Building this thread's clients now surfaces a bad proxy or TLS setup at once, and
        // the thread that made the session usually sends its first request too.
        token.client()?;
        api.client()?;
        Ok((token, api))
    }

    fn new(
        settings: Settings,
        bound: Option<Settings>,
        counters: &Arc<Counters>,
        sent: fn(&Counters) -> &AtomicU64,
    ) -> Transport {
        Transport {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            alive: Arc::new(()),
            settings,
            bound,
            library_client: ArcSwapOption::empty(),
            counters: counters.clone(),
            sent,
        }
    }

    /// After a hop failed with `failure`: the clients for sending it once more, when the
    /// connection failed under it before any byte of an answer came (a kept-alive connection
    /// the server closed as the request went out). A `repeatable` hop may always go again, any
    /// other only when hyper says its bytes never left (its "canceled"); reqwest does not say
    /// whether the connection was a reused one, and for these the resend is safe either way.
    /// The new clients keep no pooled connection (the pool may hold more the server closed);
    /// the hop keeps the exchange's `deadline`.
    pub(crate) fn fresh_clients(
        &self,
        failure: Option<Failure>,
        repeatable: bool,
        deadline: Instant,
    ) -> Option<Clients> {
        let resend = match failure {
            Some(Failure::NeverSent) => true,
            Some(Failure::Unanswered) => repeatable,
            None => false,
        };
        if !resend || Instant::now() >= deadline {
            return None;
        }
        self.build(true).ok()
    }

    /// Counts one request sent (or resent) through this transport.
    pub(crate) fn count_request(&self) {
        Counters::bump((self.sent)(&self.counters));
    }

    pub(crate) fn counters(&self) -> &Counters {
        &self.counters
    }

    /// `timeout_ms`: what bounds one whole exchange.
    pub fn timeout(&self) -> Duration {
        self.settings.timeout
    }

    pub(crate) fn follows_redirects(&self) -> bool {
        self.settings.follow_redirects
    }

    pub(crate) fn allow_insecure_http(&self) -> bool {
        self.settings.allow_insecure_http
    }

    /// Changes when the client certificate does (0 without one): clients built before are
    /// replaced, so later connections present the new certificate.
    fn generation(&self) -> u64 {
        let cert = self.bound.as_ref().and_then(|b| b.cert.as_ref());
        cert.map_or(0, |c| c.generation())
    }

    /// The clients of this transport; `fresh`: clients for one resend, keeping no idle
    /// connection.
    fn build(&self, fresh: bool) -> Result<Clients> {
        let bound = match &self.bound {
            Some(settings) => Some(Bound {
                client: settings.build(fresh)?,
                origin: settings.only_origin.clone(),
            }),
            None => None,
        };
        Ok(Clients {
            any: self.settings.build(fresh)?,
            bound,
            direct: self.settings.direct(fresh),
        })
    }

    /// Runs `work` with this thread's clients, blocking the calling thread until it is done.
    pub fn run<T, F: Future<Output = Result<T>>>(
        &self,
        work: impl FnOnce(Clients) -> F,
    ) -> Result<T> {
        let client = self.client()?;
        runtime::block_on(async {
            self.notice_closed().await;
            work(client).await
        })?
        .map_err(|e| self.name_proxy(e))
    }

    /// A failure of a request sent through the configured proxy names it.
    pub fn name_proxy(&self, err: Error) -> Error {
        crate::http::url_policy::through_proxy(err, self.settings.proxy.as_deref())
    }

    /// The clients for the calling thread's runtime.
    fn client(&self) -> Result<Clients> {
        if runtime::on_library_thread() {
            return self.library_client();
        }
        CLIENTS.with(|cell| {
            let mut slot = cell.borrow_mut();
            if !slot.as_ref().is_some_and(Owned::is_current) {
                // Clients inherited across fork() are abandoned with their sockets.
                *slot = Some(Owned::new(ClientPool::default()));
            }
            slot.as_mut()
                .and_then(Owned::get_mut)
                .expect("current")
                .client(self)
        })
    }

    /// For a runtime that runs only while a caller waits (a caller-driven queue), as for the
    /// calling thread's: lets it see connections the server closed meanwhile.
    /// Not needed where requests go out on `direct`, which looks at an idle connection itself.
    pub async fn notice_closed(&self) {
        if self.settings.direct_origin.is_none() {
            notice_closed_connections(self.settings.timeout).await
        }
    }

    /// The clients for the library runtime (async operations, background refresh).
    pub fn library_client(&self) -> Result<Clients> {
        let generation = self.generation();
        let current = self.library_client.load();
        if let Some((clients, built_with)) = current.as_ref().and_then(|c| c.get()) {
            if *built_with == generation {
                return Ok(clients.clone());
            }
        }
        let clients = self.build(false)?;
        if let Some(inherited) = self
            .library_client
            .swap(Some(Arc::new(Owned::new((clients.clone(), generation)))))
        {
            // Built before a fork, or by a thread that raced us: dropping is safe (`Owned`
            // leaks it when it is the parent's).
            drop(inherited);
        }
        Ok(clients)
    }
}

/// Between calls nothing drives this thread's runtime, so a pooled connection the server has
/// closed meanwhile still looks open. One yield lets the runtime poll the sockets and run the
/// connection tasks that saw EOF, which take themselves out of the pool before the request
/// picks one (tested by `a_connection_the_server_closed_while_idle_is_replaced`).
///
/// The yield parks Tokio's driver for a moment, and with no timer pending its time driver then
/// forgets its next wake-up; the request's timeout timer (reqwest's, `timeout` from now) would
/// then count as earlier and wake the driver through its eventfd: a `write` syscall per request
/// (and an extra event to read back). A timer due `timeout` from now, pending across the yield
/// and dropped unfired, leaves the driver a wake-up no later than the request's.
async fn notice_closed_connections(timeout: Duration) {
    let mut keep_wake_up = std::pin::pin!(tokio::time::sleep(timeout));
    std::future::poll_fn(|cx| {
        // Registers the timer; it does not fire within this yield.
        let _ = keep_wake_up.as_mut().poll(cx);
        std::task::Poll::Ready(())
    })
    .await;
    tokio::task::yield_now().await;
}

impl Drop for Transport {
    fn drop(&mut self) {
        // The freeing thread's own connections close now; other threads' on their next call.
        let _ = CLIENTS.try_with(|cell| {
            if let Ok(mut slot) = cell.try_borrow_mut() {
                if let Some(clients) = slot.as_mut().and_then(Owned::get_mut) {
                    clients.0.retain(|c| c.transport != self.id);
                }
            }
        });
    }
}

/// How a connection failed before an answer came.
pub enum Failure {
    /// The request was never written (hyper handed it back): safe to send for any method.
    NeverSent,
    /// The connection closed or reset before a complete response head arrived.
    Unanswered,
}

/// How `err` failed, if a resend may help (`Transport::fresh_clients`).
pub fn connection_failure(err: &SendError) -> Option<Failure> {
    match err {
        SendError::Reqwest(e) if e.is_timeout() || e.is_connect() => None,
        SendError::Reqwest(e) => cause_failure(e),
        SendError::Direct(f) if f.timed_out || f.connecting => None,
        SendError::Direct(f) => cause_failure(f),
    }
}

fn cause_failure(err: &(dyn std::error::Error + 'static)) -> Option<Failure> {
    let mut current: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = current {
        if let Some(h) = e.downcast_ref::<hyper::Error>() {
            if h.is_canceled() {
                return Some(Failure::NeverSent);
            }
            if h.is_incomplete_message() {
                return Some(Failure::Unanswered);
            }
        }
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            use std::io::ErrorKind::*;
            if matches!(
                io.kind(),
                ConnectionReset | ConnectionAborted | BrokenPipe | UnexpectedEof
            ) {
                return Some(Failure::Unanswered);
            }
        }
        current = e.source();
    }
    None
}

/// Whether reqwest would send without a proxy: `proxy` says none, or is unset and so are the
/// variables reqwest reads then.
fn no_proxy(proxy: Option<&str>) -> bool {
    match proxy {
        Some("" | "none") => true,
        Some(_) => false,
        None => [
            "http_proxy",
            "HTTP_PROXY",
            "https_proxy",
            "HTTPS_PROXY",
            "all_proxy",
            "ALL_PROXY",
        ]
        .iter()
        .all(|v| std::env::var_os(v).is_none_or(|v| v.is_empty())),
    }
}

impl Settings {
    /// The direct path to the API's origin, when it may be used; `fresh` (a resend): one that
    /// keeps no idle connection.
    fn direct(&self, fresh: bool) -> Option<Arc<Direct>> {
        let origin = self.direct_origin.as_ref()?;
        Direct::new(direct::Setup {
            origin,
            tls: &self.tls,
            connect_timeout: self.connect_timeout,
            user_agent: &self.user_agent,
            keep_idle: !fresh,
        })
        .map(Arc::new)
    }

    /// `fresh`: a client for one resend, keeping no idle connection.
    fn build(&self, fresh: bool) -> Result<Client> {
        let mut builder = Client::builder()
            .user_agent(self.user_agent.clone())
            // Each request sets what is left of its exchange's deadline; this is a ceiling.
            .timeout(self.timeout)
            .connect_timeout(self.connect_timeout)
            .tcp_nodelay(true)
            // No idle connection lives past the direct path's `IDLE_LIMIT`: hyper's pool looks
            // at its idle connections every `pool_idle_timeout` and closes those idle that
            // long, so at half the limit each is closed within the limit.
            .pool_idle_timeout(direct::IDLE_LIMIT / 2)
            .pool_max_idle_per_host(direct::MAX_IDLE)
            // Redirects are followed by `pipeline`, hop by hop (so no Referer either).
            .referer(false)
            .redirect(redirect::Policy::none());
        builder = match &self.cert {
            Some(cert) => builder.use_preconfigured_tls(cert.tls_config(&self.tls)),
            None => builder.use_preconfigured_tls(self.tls.clone()),
        };
        match self.proxy.as_deref() {
            None => {}
            Some("" | "none") => builder = builder.no_proxy(),
            Some(url) => {
                let proxy = reqwest::Proxy::all(url).map_err(|e| {
                    Error::invalid(format!(
                        "proxy: '{}' is not a usable proxy URL: {e}",
                        redact_str(url)
                    ))
                })?;
                builder = builder.proxy(proxy);
            }
        }
        if fresh {
            builder = builder.pool_max_idle_per_host(0);
        }
        builder.build().map_err(|e| {
            Error::new(
                Code::CLOUDAUTH_ERR_INTERNAL,
                format!("cannot build the HTTP client: {}", chain(&e)),
            )
        })
    }
}

/// TLS 1.2/1.3 with verification always on, against the system's roots plus `ca_file`. The
/// system's roots are read at the first certificate check, once per process (`tls::verifier`);
/// `ca_file` is read and checked now.
fn tls_config(ca_file: Option<&str>) -> Result<rustls::ClientConfig> {
    let mut roots = RootCertStore::empty();
    if let Some(path) = ca_file {
        let pem = std::fs::read(path)
            .map_err(|e| Error::invalid(format!("ca_file: cannot read '{path}': {e}")))?;
        let certs = CertificateDer::pem_slice_iter(&pem)
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(|e| Error::invalid(format!("ca_file: '{path}' is not a PEM bundle: {e}")))?;
        if certs.is_empty() {
            return Err(Error::invalid(format!(
                "ca_file: '{path}' holds no PEM certificate"
            )));
        }
        for cert in certs {
            roots.add(cert).map_err(|e| {
                Error::invalid(format!(
                    "ca_file: a certificate in '{path}' is unusable: {e}"
                ))
            })?;
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut tls = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| {
            Error::new(
                Code::CLOUDAUTH_ERR_INTERNAL,
                format!("TLS setup failed: {e}"),
            )
        })?
        // rustls' own WebPKI check, built at first use: `dangerous()` is only the way in for a
        // verifier of our making, nothing is skipped.
        .dangerous()
        .with_custom_certificate_verifier(crate::tls::verifier::for_session(roots, &provider))
        .with_no_client_auth();
    tls.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(tls)
}

/// A failed send, as a result code and a message naming the step and the (redacted) URL.
pub fn send_error(err: impl Into<SendError>, step: &str, url: &url::Url) -> Error {
    let shown = redact(url);
    let err = match err.into() {
        SendError::Reqwest(e) => e,
        SendError::Direct(f) if f.timed_out => {
            return Error::new(
                Code::CLOUDAUTH_ERR_TIMEOUT,
                format!("{step} {shown} timed out ({f})"),
            )
        }
        SendError::Direct(f) => {
            return Error::new(
                Code::CLOUDAUTH_ERR_NETWORK,
                format!("{step} {shown} failed: {f}"),
            )
        }
    };
    let err = &err;
    if err.is_timeout() {
        return Error::new(
            Code::CLOUDAUTH_ERR_TIMEOUT,
            format!("{step} {shown} timed out ({})", chain(err)),
        );
    }
    Error::new(
        Code::CLOUDAUTH_ERR_NETWORK,
        format!("{step} {shown} failed: {}", chain(err)),
    )
}

/// Reads the whole body, refusing more than `cap` bytes. Memory follows what has arrived, never
/// what the server declared: a `Content-Length` is a claim, and a huge one with a short body
/// must not make us allocate it (the buffer grows by doubling, so at most twice what came).
pub async fn read_body(
    resp: impl Into<Answer>,
    cap: usize,
    step: &str,
    url: &url::Url,
) -> Result<Vec<u8>> {
    let mut body = Vec::new();
    stream_body(resp, cap, step, url, |chunk| {
        body.extend_from_slice(chunk);
        Ok(())
    })
    .await?;
    Ok(body)
}

/// Hands the body to `each`, piece by piece as it arrives, refusing more than `cap` bytes in
/// all (before a piece past the cap reaches `each`). An error from `each` ends the read.
pub async fn stream_body(
    resp: impl Into<Answer>,
    cap: usize,
    step: &str,
    url: &url::Url,
    mut each: impl FnMut(&[u8]) -> Result<()>,
) -> Result<()> {
    let mut resp = resp.into();
    let too_large = || {
        Error::new(
            Code::CLOUDAUTH_ERR_TOO_LARGE,
            format!(
                "{step} {}: the response body exceeds the cap of {cap} bytes",
                redact(url)
            ),
        )
    };
    let declared = resp.content_length();
    if declared.is_some_and(|n| n > cap as u64) {
        return Err(too_large());
    }
    let mut seen = 0usize;
    while let Some(chunk) = resp.chunk().await.map_err(|e| send_error(e, step, url))? {
        seen = seen.saturating_add(chunk.len());
        if seen > cap {
            return Err(too_large());
        }
        each(&chunk)?;
    }
    Ok(())
}

/// The error and its causes on one line, without URLs (reqwest's own text carries the full URL).
fn chain(err: &reqwest::Error) -> String {
    let mut parts = vec![err.to_string()];
    let mut source = std::error::Error::source(err);
    while let Some(s) = source {
        let text = s.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        source = s.source();
    }
    // reqwest prints "... for url (...)": cut it, our callers show the redacted URL themselves.
    let first = &mut parts[0];
    if let Some(i) = first.find(" for url (") {
        first.truncate(i);
    }
    parts.join(": ")
}
