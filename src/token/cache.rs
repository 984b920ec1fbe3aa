//! The cached token: a lock-free read path, refresh ahead of expiry by one caller while the
//! others keep using the still-valid token, and single flight when there is no usable token.

use crate::error::{Error, Result};
use crate::token::Token;
use arc_swap::ArcSwapOption;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

#[derive(Default)]
pub struct TokenCache {
    current: ArcSwapOption<Token>,
    /// Held only by the one caller that is fetching. Holds the last fetch's failure, which the
    /// callers that waited for that fetch share instead of each repeating it.
    fetching: Mutex<Option<Error>>,
    /// Completed fetches; a caller that sees it move while waiting knows someone fetched for it.
    fetches: AtomicU64,
    /// After a failed refresh ahead of expiry, no new attempt before this instant, so a down
    /// token endpoint is not hit on every call while the old token still works.
    quiet_until: Mutex<Option<Instant>>,
}

/// The longest pause between refresh attempts while the old token is still valid.
const REFRESH_RETRY_PAUSE: Duration = Duration::from_secs(5);

impl TokenCache {
    /// Runs `use_token` on a valid token, fetching one with `fetch` only when needed. The common
    /// case (a fresh token) takes no lock, allocates nothing and touches no shared counter.
    pub fn with_token<R>(
        &self,
        fetch: impl FnOnce() -> Result<Token>,
        use_token: impl FnOnce(&Arc<Token>) -> R,
    ) -> Result<R> {
        {
            let current = self.current.load();
            if let Some(token) = current.as_ref() {
                if Instant::now() < token.refresh_at {
                    return Ok(use_token(token));
                }
            }
        }
        let token = self.refresh(fetch)?;
        Ok(use_token(&token))
    }

    fn refresh(&self, fetch: impl FnOnce() -> Result<Token>) -> Result<Arc<Token>> {
        let seen = self.fetches.load(Ordering::Acquire);
        if let Some(valid) = self.usable() {
            // Inside the refresh window: one caller refreshes, nobody waits for it.
            let Ok(mut last) = self.fetching.try_lock() else {
                return Ok(valid);
            };
            if let Some(fresh) = self.fresh() {
                return Ok(fresh);
            }
            let now = Instant::now();
            let mut quiet_until = lock(&self.quiet_until);
            if quiet_until.is_some_and(|t| now < t) {
                return Ok(valid);
            }
            // If the refresh fails, the old token is still good until it expires; try again
            // after a pause short enough to leave a few attempts before then.
            return Ok(self.fetch_and_store(&mut last, fetch).unwrap_or_else(|_| {
                let left = valid.expires_at.saturating_duration_since(now);
                *quiet_until = Some(now + REFRESH_RETRY_PAUSE.min(left / 4));
                valid
            }));
        }
        let mut last = lock(&self.fetching);
        if self.fetches.load(Ordering::Acquire) != seen {
            if let Some(token) = self.usable() {
                return Ok(token);
            }
            if let Some(error) = last.as_ref() {
                return Err(error.clone());
            }
        }
        self.fetch_and_store(&mut last, fetch)
    }

    fn fetch_and_store(
        &self,
        last: &mut MutexGuard<'_, Option<Error>>,
        fetch: impl FnOnce() -> Result<Token>,
    ) -> Result<Arc<Token>> {
        let result = fetch().map(Arc::new);
        match &result {
            Ok(token) => {
                self.current.store(Some(token.clone()));
                **last = None;
            }
            Err(error) => **last = Some(error.clone()),
        }
        self.fetches.fetch_add(1, Ordering::Release);
        result
    }

    /// A token that has not reached its refresh point.
    fn fresh(&self) -> Option<Arc<Token>> {
        self.current
            .load_full()
            .filter(|t| Instant::now() < t.refresh_at)
    }

    /// A token that has not expired, though it may be due for refresh.
    fn usable(&self) -> Option<Arc<Token>> {
        self.current
            .load_full()
            .filter(|t| Instant::now() < t.expires_at)
    }

    /// The token held now, whatever its state.
    pub fn current(&self) -> Option<Arc<Token>> {
        self.current.load_full()
    }

    /// Forgets the token, whichever it is.
    pub fn invalidate(&self) {
        self.current.store(None);
    }

    /// Forgets the current token only if `rejected` says it is the one a server refused: after
    /// a 401, a token another thread has fetched in the meantime must survive.
    pub fn invalidate_if(&self, rejected: impl Fn(&Token) -> bool) {
        let current = self.current.load();
        if current.as_deref().is_some_and(rejected) {
            self.current.compare_and_swap(&*current, None);
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while fetching is caught at the FFI boundary; the data (a last error) stays sound.
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Code;
    use std::sync::atomic::AtomicUsize;

    fn token(value: &str, lifetime_ms: u64, skew_ms: u64) -> Token {
        Token::new(
            value.into(),
            Duration::from_millis(lifetime_ms),
            Duration::from_millis(skew_ms),
            Instant::now(),
        )
        .unwrap()
    }

    fn value(cache: &TokenCache, fetch: impl FnOnce() -> Result<Token>) -> Result<String> {
        cache.with_token(fetch, |t| t.value().to_owned())
    }

    #[test]
    fn fetches_once_then_serves_from_cache() {
        let cache = TokenCache::default();
        assert_eq!(value(&cache, || Ok(token("a", 60_000, 0))).unwrap(), "a");
        assert_eq!(value(&cache, || panic!("must not fetch")).unwrap(), "a");
    }

    /// `n` threads ask `cache` at once; each fetch takes 50 ms and gives `outcome`. Returns what
    /// each thread got and how many fetches ran.
    fn race(n: usize, outcome: fn() -> Result<Token>) -> (Vec<Result<String>>, usize) {
        let cache = Arc::new(TokenCache::default());
        let fetches = Arc::new(AtomicUsize::new(0));
        let threads: Vec<_> = (0..n)
            .map(|_| {
                let (cache, fetches) = (cache.clone(), fetches.clone());
                std::thread::spawn(move || {
                    value(&cache, || {
                        fetches.fetch_add(1, Ordering::SeqCst);
                        std::thread::sleep(Duration::from_millis(50));
                        outcome()
                    })
                })
            })
            .collect();
        let got = threads.into_iter().map(|t| t.join().unwrap()).collect();
        (got, fetches.load(Ordering::SeqCst))
    }

    #[test]
    fn many_threads_cause_one_fetch() {
        let (got, fetches) = race(16, || Ok(token("t", 60_000, 0)));
        assert!(got.into_iter().all(|t| t.unwrap() == "t"));
        assert_eq!(fetches, 1);
    }

    #[test]
    fn waiters_share_a_failure_instead_of_repeating_it() {
        let (got, fetches) = race(8, || Err(Error::new(Code::CLOUDAUTH_ERR_NETWORK, "down")));
        assert!(got
            .into_iter()
            .all(|r| r.unwrap_err().code == Code::CLOUDAUTH_ERR_NETWORK));
        // Threads that arrive after a failed fetch try again; those that waited for it do not.
        assert!(fetches < 8, "{fetches} fetches");
    }

    #[test]
    fn refresh_window_keeps_old_token_when_refresh_fails() {
        let cache = TokenCache::default();
        // A token already inside its refresh window: obtained 6 s ago, lifetime 10 s, skew
        // capped at 5 s, so due for refresh since 1 s and valid for 4 s more.
        let t = Token::new(
            "old".into(),
            Duration::from_secs(10),
            Duration::from_secs(10),
            Instant::now() - Duration::from_secs(6),
        )
        .unwrap();
        assert_eq!(value(&cache, || Ok(t)).unwrap(), "old");
        let got = value(&cache, || {
            Err(Error::new(Code::CLOUDAUTH_ERR_NETWORK, "down"))
        })
        .unwrap();
        assert_eq!(got, "old");
        // Right after a failed refresh the endpoint is left alone for a while (here ~1 s: a
        // quarter of the ~4 s the old token has left).
        assert_eq!(
            value(&cache, || panic!("must pause after a failure")).unwrap(),
            "old"
        );
        *lock(&cache.quiet_until) = None; // as if the pause were over
        assert_eq!(
            value(&cache, || Ok(token("new", 60_000, 0))).unwrap(),
            "new"
        );
    }

    #[test]
    fn invalidate_if_spares_a_newer_token() {
        let cache = TokenCache::default();
        let first = cache
            .with_token(|| Ok(token("a", 60_000, 0)), Arc::clone)
            .unwrap();
        cache.invalidate();
        let _second = cache
            .with_token(|| Ok(token("b", 60_000, 0)), Arc::clone)
            .unwrap();
        cache.invalidate_if(|t| std::ptr::eq(t, &*first));
        assert_eq!(value(&cache, || panic!("b must survive")).unwrap(), "b");
        let second = cache.with_token(|| unreachable!(), Arc::clone).unwrap();
        cache.invalidate_if(|t| t.value() == second.value());
        assert_eq!(value(&cache, || Ok(token("c", 60_000, 0))).unwrap(), "c");
    }
}
