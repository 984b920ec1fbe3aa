//! Counters a session keeps for dashboards and tests (`cloudauth_session_stats`). They are
//! bumped on the slow paths only (a token request, an API request); the cached-token read
//! writes nothing shared.

use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Default, Debug)]
pub struct Counters {
    pub token_requests: AtomicU64,
    pub token_failures: AtomicU64,
    pub background_refreshes: AtomicU64,
    pub api_requests: AtomicU64,
    pub unauthorized_resends: AtomicU64,
    pub shared_cache_hits: AtomicU64,
    pub shared_cache_errors: AtomicU64,
    pub connection_resends: AtomicU64,
}

/// A snapshot of the counters, with the current token's remaining life.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    pub token_requests: u64,
    pub token_failures: u64,
    pub background_refreshes: u64,
    pub api_requests: u64,
    pub unauthorized_resends: u64,
    pub shared_cache_hits: u64,
    pub shared_cache_errors: u64,
    /// -1 when there is no token.
    pub token_expires_in_ms: i64,
    pub connection_resends: u64,
}

impl Counters {
    pub fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub fn snapshot(&self, token_expires_in_ms: i64) -> Stats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        Stats {
            token_requests: get(&self.token_requests),
            token_failures: get(&self.token_failures),
            background_refreshes: get(&self.background_refreshes),
            api_requests: get(&self.api_requests),
            unauthorized_resends: get(&self.unauthorized_resends),
            shared_cache_hits: get(&self.shared_cache_hits),
            shared_cache_errors: get(&self.shared_cache_errors),
            token_expires_in_ms,
            connection_resends: get(&self.connection_resends),
        }
    }
}
