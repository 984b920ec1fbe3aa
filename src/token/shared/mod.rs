//! The cross-process token caches (README.md, "Shared token caches"): `file` for the processes of
//! one user on one host, `redis` for a fleet. Both sit behind the in-memory cache, hold sealed
//! entries (`seal`), and give a single flight across processes: one fetches, the others wait
//! for its result, bounded by how long a token request may take.
//!
//! The cache is an optimisation, never a point of failure: any cache failure is reported
//! (`CacheReport::Error`) and the caller fetches directly.

pub mod file;
pub mod redis;
pub mod seal;
pub mod seal_key;

use self::seal::{now_ms, Entry, Sealer};
use crate::error::{Error, Result};
use crate::oauth::{AuthMethod, GrantKind, TokenCacheKind};
use crate::secret::Secret;
use crate::token::{EndpointSettings, Token};
use arc_swap::ArcSwap;
use ring::digest::{digest, SHA256};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::RecvTimeoutError;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What the shared cache tells its owner (the session's stats and events).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CacheReport {
    /// A token was taken from the shared cache instead of the endpoint.
    Hit,
    /// A cache operation failed; the call went on without it. `outage_started` is true for the
    /// first error after a success (or ever), so an outage is announced once, not per call.
    Error {
        message: String,
        outage_started: bool,
    },
}

pub type Reporter = Arc<dyn Fn(CacheReport) + Send + Sync>;

/// What the shared cache is told of the configuration; the session builds it (src/session.rs).
#[derive(Clone)]
pub struct CacheSettings {
    pub token_cache: TokenCacheKind,
    /// `None`: `$XDG_CACHE_HOME/cloudauth`, else `~/.cache/cloudauth`, resolved when used.
    pub token_cache_dir: Option<String>,
    /// Holds the password, if any: shown only through `redact`.
    pub redis_url: Option<Secret>,
    pub token_cache_timeout: Duration,
    /// For Redis over TLS.
    pub ca_file: Option<String>,
    /// Under DPoP only DPoP-bound tokens are shared.
    pub dpop: bool,
    /// One token request's `timeout_ms`.
    pub timeout: Duration,
    /// The token request the entries are for (it names them), with `token_cache_key_file`.
    pub endpoint: EndpointSettings,
}

/// One storage place for one cache key: read, write and compare-and-delete the sealed entry,
/// and a lock that at most one process holds (`try_lock` never waits).
pub(crate) trait Backend: Send + Sync {
    type Lock: Sync;
    /// The sealed entry, `None` if there is none.
    fn read(&self) -> std::result::Result<Option<Vec<u8>>, String>;
    /// Stores the sealed entry; `ttl` is how long it stays useful (its refresh point).
    fn write(&self, sealed: &[u8], ttl: Duration) -> std::result::Result<(), String>;
    /// Removes the entry only if it still is `sealed` (atomically: a newer entry survives).
    fn remove_if_equal(&self, sealed: &[u8]) -> std::result::Result<(), String>;
    /// Takes the fetch lock if free. `hold` bounds how long a crashed holder can keep it.
    fn try_lock(&self, hold: Duration) -> std::result::Result<Option<Self::Lock>, String>;
    fn unlock(&self, lock: Self::Lock) -> std::result::Result<(), String>;
    /// How long a taken lock lasts unless renewed, for a lock that outlives a holder that
    /// died (Redis); `None` for one that ends with its holder (an flock).
    fn lease(&self) -> Option<Duration> {
        None
    }
    /// Extends a lock this process still holds to `lease` from now.
    fn renew(&self, _lock: &Self::Lock, _lease: Duration) -> std::result::Result<(), String> {
        Ok(())
    }
}

enum Store {
    File(file::FileCache),
    Redis(Box<self::redis::RedisCache>),
}

pub struct SharedCache {
    /// The store and sealer for the current client id and secret; replaced when they change.
    keyed: ArcSwap<Keyed>,
    /// Where the store lives and what names the entry (besides the client id).
    cfg: CacheSettings,
    /// With a pinned DPoP key: its thumbprint, part of the entry's name.
    dpop_jkt: Option<String>,
    report: Reporter,
    in_outage: AtomicBool,
    /// How long a token request may take: the longest wait for another process's fetch.
    fetch_bound: Duration,
}

struct Keyed {
    client_id: String,
    secret: Secret,
    store: Arc<Store>,
    sealer: Sealer,
}

/// The first pause between polls for another process's fetch, and the longest.
const FIRST_POLL: Duration = Duration::from_millis(2);
const MAX_POLL: Duration = Duration::from_millis(50);

impl SharedCache {
    /// `None` for `token_cache=memory`. A configuration that cannot work (redis without
    /// redis_url) is an error; a cache that is merely unreachable is not (it is reported
    /// when used, and the calls go on). `secret` is the client secret as of now.
    pub fn new(
        cfg: &CacheSettings,
        dpop_jkt: Option<&str>,
        secret: &[u8],
        report: Reporter,
    ) -> Result<Option<SharedCache>> {
        if cfg.token_cache == TokenCacheKind::Memory {
            return Ok(None);
        }
        let client_id = cfg.endpoint.client_id.clone().unwrap_or_default();
        let store = Arc::new(open_store(cfg, dpop_jkt, &client_id)?);
        let keyed = Keyed::new(cfg, dpop_jkt, client_id, secret, store);
        let mut cfg = cfg.clone();
        cfg.endpoint.client_secret = None; // not needed here: the sealer holds what it derived
        let attempts = cfg.endpoint.max_retries + 1;
        Ok(Some(SharedCache {
            keyed: ArcSwap::from_pointee(keyed),
            fetch_bound: cfg.timeout.saturating_mul(attempts),
            cfg,
            dpop_jkt: dpop_jkt.map(str::to_owned),
            report,
            in_outage: AtomicBool::new(false),
        }))
    }

    /// Follows a credentials change (`set_credentials`, a replaced `client_secret_file`):
    /// another client id is another entry; another secret seals and opens with another key
    /// (entries of the old one no longer open, so the next fetch stores a new one). Cheap when
    /// nothing changed: call it before each use.
    pub fn use_credentials(&self, client_id: &str, secret: &[u8]) {
        let current = self.keyed.load();
        if current.client_id == client_id && current.secret.expose().as_bytes() == secret {
            return;
        }
        let store = if current.client_id == client_id {
            current.store.clone()
        } else {
            match open_store(&self.cfg, self.dpop_jkt.as_deref(), client_id) {
                Ok(store) => Arc::new(store),
                Err(_) => return, // the URL was checked when the session was made
            }
        };
        let keyed = Keyed::new(
            &self.cfg,
            self.dpop_jkt.as_deref(),
            client_id.to_owned(),
            secret,
            store,
        );
        self.keyed.store(Arc::new(keyed));
    }

    /// A token not yet due for refresh from the shared cache, or else one from `fetch`, stored
    /// for the others; concurrent callers in other processes wait for this one's fetch.
    pub fn get_or_fetch(&self, fetch: impl FnOnce() -> Result<Token>) -> Result<Token> {
        let k = self.keyed.load_full();
        match &*k.store {
            Store::File(b) => self.flight(b, &k.sealer, fetch),
            // Redis is written with plain `write`: SIGPIPE blocked meanwhile (`crate::sigpipe`).
            Store::Redis(b) => crate::sigpipe::guarded(|| self.flight(&**b, &k.sealer, fetch)),
        }
    }

    /// After a 401: removes the shared entry only if it still holds `rejected_token`.
    pub fn remove_if(&self, rejected_token: &str) {
        let k = self.keyed.load_full();
        match &*k.store {
            Store::File(b) => self.remove(b, &k.sealer, rejected_token),
            Store::Redis(b) => {
                crate::sigpipe::guarded(|| self.remove(&**b, &k.sealer, rejected_token))
            }
        }
    }

    fn flight<B: Backend>(
        &self,
        b: &B,
        sealer: &Sealer,
        fetch: impl FnOnce() -> Result<Token>,
    ) -> Result<Token> {
        let mut call = Call::new(self);
        let deadline = Instant::now() + self.fetch_bound;
        let mut pause = FIRST_POLL;
        // A lock with a lease is held no longer than the fetch, renewed while it runs: a
        // holder that died keeps others waiting one lease at most, not a whole fetch bound.
        let hold = b.lease().unwrap_or(self.fetch_bound);
        let max_poll = b.lease().map_or(MAX_POLL, |lease| MAX_POLL.min(lease / 4));
        loop {
            let Some(found) = call.ok(b.read()) else {
                return call.finish(fetch());
            };
            if let Some(token) = self.fresh(sealer, &mut call, found) {
                return Ok(self.hit(call, token));
            }
            let Some(lock) = call.ok(b.try_lock(hold)) else {
                return call.finish(fetch());
            };
            if let Some(lock) = lock {
                // Someone may have stored between our read and the lock.
                let stored = call.ok(b.read()).flatten();
                if let Some(token) = self.fresh(sealer, &mut call, stored) {
                    call.ok(b.unlock(lock));
                    return Ok(self.hit(call, token));
                }
                let result = self.renewing(b, &lock, || {
                    self.fetch_and_store(b, sealer, &mut call, fetch)
                });
                call.ok(b.unlock(lock));
                return call.finish(result);
            }
            if Instant::now() >= deadline {
                // Waited as long as the other process's fetch may take: fetch ourselves.
                let result = self.fetch_and_store(b, sealer, &mut call, fetch);
                return call.finish(result);
            }
            std::thread::sleep(jitter(pause));
            pause = (pause * 2).min(max_poll);
        }
    }

    /// Runs `work` while a thread renews `lock` every quarter of its lease (so a renewal may
    /// come up to three quarters late on a busy machine before the lock lapses), for at most the
    /// fetch bound (a holder stuck longer lets it lapse, as waiters then stop waiting).
    /// Renewal failures are not reported: a lapsed lock costs at most one more fetch elsewhere.
    fn renewing<B: Backend, T>(&self, b: &B, lock: &B::Lock, work: impl FnOnce() -> T) -> T {
        let Some(lease) = b.lease() else {
            return work();
        };
        let until = Instant::now() + self.fetch_bound;
        let (stop, stopped) = std::sync::mpsc::channel::<()>();
        std::thread::scope(|scope| {
            let keeper = std::thread::Builder::new()
                .name("cloudauth-lock".into())
                .spawn_scoped(scope, move || {
                    crate::sigpipe::block_for_thread();
                    while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(lease / 4) {
                        if Instant::now() >= until {
                            return;
                        }
                        let _ = b.renew(lock, lease);
                    }
                });
            let out = work();
            drop(stop);
            if let Ok(keeper) = keeper {
                let _ = keeper.join();
            }
            out
        })
    }

    fn fetch_and_store<B: Backend>(
        &self,
        b: &B,
        sealer: &Sealer,
        call: &mut Call<'_>,
        fetch: impl FnOnce() -> Result<Token>,
    ) -> Result<Token> {
        let token = fetch()?;
        // Under DPoP only a DPoP-bound token is shared: entries read back are taken as such.
        if self.cfg.dpop && !token.is_dpop() {
            return Ok(token);
        }
        let entry = to_entry(&token);
        let ttl = Duration::from_millis(entry.refresh_at_ms.saturating_sub(now_ms()));
        if !ttl.is_zero() {
            if let Some(sealed) = call.ok(sealer.seal(&entry)) {
                call.ok(b.write(&sealed, ttl));
            }
        }
        Ok(token)
    }

    fn hit(&self, call: Call<'_>, token: Token) -> Token {
        call.finish(());
        (self.report)(CacheReport::Hit);
        token
    }

    /// The token in `found` if it opens and is not yet due for refresh.
    fn fresh(&self, sealer: &Sealer, call: &mut Call<'_>, found: Option<Vec<u8>>) -> Option<Token> {
        let opened = sealer.open(&found?);
        // Reported once per call, not at every poll while another process replaces it.
        let entry = match opened {
            Err(_) if call.unusable_seen => return None,
            Err(e) => {
                call.unusable_seen = true;
                call.ok(Err(e))?
            }
            Ok(entry) => entry,
        };
        let now = now_ms();
        if now >= entry.refresh_at_ms || now >= entry.expires_at_ms {
            return None;
        }
        let refresh_in = Duration::from_millis(entry.refresh_at_ms - now);
        let expires_in = Duration::from_millis(entry.expires_at_ms - now);
        let mut token = call
            .ok(Token::from_remaining(entry.token, refresh_in, expires_in).map_err(|e| e.message))?;
        if self.cfg.dpop {
            token.use_dpop_scheme();
        }
        Some(token)
    }

    fn remove<B: Backend>(&self, b: &B, sealer: &Sealer, rejected: &str) {
        let mut call = Call::new(self);
        if let Some(Some(sealed)) = call.ok(b.read()) {
            if sealer.open(&sealed).is_ok_and(|e| e.token == rejected) {
                call.ok(b.remove_if_equal(&sealed));
            }
        }
        call.finish(())
    }
}

impl Keyed {
    fn new(
        cfg: &CacheSettings,
        dpop_jkt: Option<&str>,
        client_id: String,
        secret: &[u8],
        store: Arc<Store>,
    ) -> Keyed {
        let key = cache_key(&cfg.endpoint, dpop_jkt, &client_id);
        Keyed {
            sealer: Sealer::new(secret, &key),
            secret: Secret::new(&String::from_utf8_lossy(secret)),
            client_id,
            store,
        }
    }
}

fn open_store(cfg: &CacheSettings, dpop_jkt: Option<&str>, client_id: &str) -> Result<Store> {
    let key = cache_key(&cfg.endpoint, dpop_jkt, client_id);
    Ok(match cfg.token_cache {
        // (memory has no store: `SharedCache::new` returned before)
        TokenCacheKind::Memory | TokenCacheKind::File => Store::File(file::FileCache::new(
            cfg.token_cache_dir.as_deref(),
            &key,
            cfg.token_cache_timeout,
        )),
        TokenCacheKind::Redis => {
            let url = cfg
                .redis_url
                .as_ref()
                .ok_or_else(|| Error::invalid("token_cache is redis but redis_url is not set"))?;
            Store::Redis(Box::new(self::redis::RedisCache::new(
                url.expose(),
                cfg.ca_file.as_deref(),
                &key,
                cfg.token_cache_timeout,
            )?))
        }
    })
}

/// The failures of one call: each is reported; a call without any ends an outage. Reports
/// are delivered when the call ends, so the owner's callback never runs while this process
/// holds the cross-process lock.
struct Call<'a> {
    cache: &'a SharedCache,
    failed: bool,
    unusable_seen: bool,
    pending: Vec<CacheReport>,
}

impl<'a> Call<'a> {
    fn new(cache: &'a SharedCache) -> Self {
        Call {
            cache,
            failed: false,
            unusable_seen: false,
            pending: Vec::new(),
        }
    }

    /// The value, or `None` after reporting the failure.
    fn ok<T>(&mut self, r: std::result::Result<T, String>) -> Option<T> {
        match r {
            Ok(v) => Some(v),
            Err(message) => {
                self.failed = true;
                let outage_started = !self.cache.in_outage.swap(true, Ordering::AcqRel);
                self.pending.push(CacheReport::Error {
                    message: format!("{message}; the token is fetched directly"),
                    outage_started,
                });
                None
            }
        }
    }

    /// Ends the call, passing `result` through.
    fn finish<T>(self, result: T) -> T {
        if !self.failed {
            self.cache.in_outage.store(false, Ordering::Release);
        }
        for report in self.pending {
            (self.cache.report)(report);
        }
        result
    }
}

/// Spreads the polls of processes that started together.
fn jitter(pause: Duration) -> Duration {
    pause / 2 + pause.mul_f64(fastrand::f64() / 2.0)
}

/// The entry's name: SHA-256 over what identifies the token, never the secret.
pub fn cache_key(cfg: &EndpointSettings, dpop_jkt: Option<&str>, client_id: &str) -> String {
    let mut text = String::from("cloudauth token v1");
    for part in [
        cfg.token_url(),
        client_id,
        cfg.scope.as_deref().unwrap_or(""),
        cfg.auth_method.name(),
    ] {
        text.push('\0');
        text.push_str(part);
    }
    // v2 inputs, appended only when used so that v1 entries keep their names. Each part is
    // tagged and length-prefixed: no two configurations can spell the same text.
    let mut extra = |tag: &str, value: &str| {
        text.push_str(&format!("\0{tag}{}:{value}", value.len()));
    };
    if let Some(issuer) = cfg.issuer.as_deref().filter(|_| cfg.token_url.is_none()) {
        extra("issuer", issuer);
    }
    if let Some(audience) = &cfg.audience {
        extra("audience", audience);
    }
    for resource in &cfg.resource {
        extra("resource", resource);
    }
    for (name, value) in &cfg.token_params {
        extra("param", &format!("{}:{name}={value}", name.len()));
    }
    if let Some(alg) = cfg.client_assertion_alg {
        extra("alg", alg.name());
    }
    if let Some(kid) = &cfg.client_key_id {
        extra("kid", kid);
    }
    if cfg.auth_method.presents_certificate() {
        // A certificate-bound token is only good with its certificate (RFC 8705 §3).
        extra("cert", cfg.client_cert_file.as_deref().unwrap_or(""));
    }
    if let Some(jkt) = dpop_jkt {
        extra("dpop_jkt", jkt);
    }
    // Workload identity: what the token stands for, never a token or a file's content.
    let w = &cfg.workload;
    if w.grant != GrantKind::ClientCredentials {
        extra("grant", w.grant.name());
    }
    if cfg.auth_method == AuthMethod::ClientAssertion {
        extra("assertion_type", w.client_assertion_type());
    }
    for (tag, value) in [
        ("subject_token_type", &w.subject_token_type),
        ("requested_token_type", &w.requested_token_type),
        ("actor_token_type", &w.actor_token_type),
        ("assertion_issuer", &w.assertion_issuer),
        ("assertion_subject", &w.assertion_subject),
    ] {
        if let Some(value) = value {
            extra(tag, value);
        }
    }
    digest(&SHA256, text.as_bytes())
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The token's monotonic deadlines as wall-clock times, for other processes.
fn to_entry(token: &Token) -> Entry {
    let (now, wall) = (Instant::now(), now_ms());
    let at = |t: Instant| wall + t.saturating_duration_since(now).as_millis() as u64;
    Entry {
        token: token.value().to_owned(),
        refresh_at_ms: at(token.refresh_at),
        expires_at_ms: at(token.expires_at),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_names_the_token_not_the_secret() {
        let base = [("client_id", "id"), ("client_secret", "one")];
        let a = crate::session::settings_of(&base).0;
        let b = crate::session::settings_of(&[base[0], base[1], ("client_secret", "two")]).0;
        let key = |c: &EndpointSettings| cache_key(c, None, c.client_id.as_deref().unwrap());
        assert_eq!(key(&a), key(&b));
        assert_eq!(key(&a).len(), 64);
        for (k, v) in [
            ("client_id", "id2"),
            ("scope", "s"),
            ("auth_method", "client_secret_basic"),
            ("token_url", "https://other.example/token"),
            ("auth_method", "private_key_jwt"),
            ("auth_method", "client_secret_jwt"),
            ("audience", "https://api.example"),
            ("resource", "https://r.example"),
            ("token_param.tenant", "t"),
            ("issuer", "https://idp.example"),
            ("client_assertion_alg", "PS256"),
            ("client_key_id", "k1"),
            ("grant_type", "jwt_bearer"),
            ("grant_type", "token_exchange"),
            (
                "subject_token_type",
                "urn:ietf:params:oauth:token-type:id_token",
            ),
            (
                "requested_token_type",
                "urn:ietf:params:oauth:token-type:jwt",
            ),
            ("assertion_subject", "user@example.com"),
            ("auth_method", "client_assertion"),
        ] {
            let c = crate::session::settings_of(&[base[0], base[1], (k, v)]).0;
            assert_ne!(key(&a), key(&c), "{k}");
        }
        // Each input is delimited: moving text from one field to the next changes the key.
        let with = |pairs: &[(&str, &str)]| {
            let all: Vec<_> = base.iter().chain(pairs).copied().collect();
            key(&crate::session::settings_of(&all).0)
        };
        assert_ne!(
            with(&[("token_param.a", "b=c")]),
            with(&[("token_param.a=b", "c")])
        );
        assert_ne!(
            with(&[("resource", "https://a.example,https://b.example")]),
            with(&[("resource", "https://a.example")])
        );
        // Key material never enters the key: another key file, same entry name.
        assert_eq!(
            with(&[("client_key_file", "/a.pem")]),
            with(&[("client_key_file", "/b.pem")])
        );
        // Nor do the token files (their content is a secret; where they are says nothing).
        for k in [
            "client_assertion_file",
            "subject_token_file",
            "credentials_file",
            "token_cache_key_file",
        ] {
            assert_eq!(with(&[(k, "/a")]), with(&[(k, "/b")]), "{k}");
        }
    }

    #[test]
    fn redis_needs_a_url() {
        let mut c = crate::session::settings_of(&[("token_cache", "redis")]).1;
        let err = SharedCache::new(&c, None, b"s", Arc::new(|_| {}))
            .err()
            .unwrap();
        assert_eq!(err.code, crate::error::Code::CLOUDAUTH_ERR_INVALID_ARGUMENT);
        assert!(err.message.contains("redis_url"));
        c.token_cache = TokenCacheKind::Memory;
        assert!(SharedCache::new(&c, None, b"s", Arc::new(|_| {}))
            .unwrap()
            .is_none());
    }
}
