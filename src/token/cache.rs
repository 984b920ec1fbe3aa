//! The cached token of one session: a lock-free read path, one fetch at a time (single flight),
//! and refresh ahead of expiry while every caller keeps using the still-valid token.
//!
//! The bookkeeping of fetches in flight (`Flight`) belongs to the fork generation that made
//! it: a child of fork() may inherit it mid-fetch, with a fetcher thread that does not exist
//! there, so the child starts a fresh one. The token itself is only data and is kept.
//!
//! No lock is held while a fetch runs, so the events it reports may call back into the library.

use crate::error::{Code, Error, Result};
use crate::events::Reason;
use crate::fork;
use crate::token::snapshot::Snapshot;
use crate::token::Token;
use arc_swap::{ArcSwap, ArcSwapOption};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::ThreadId;
use std::time::{Duration, Instant};

/// Where new tokens come from, and how a fetch off the callers' threads runs.
pub trait Source: Sync {
    /// Fetches a new token; runs with no lock held.
    fn fetch(&self, reason: Reason) -> Result<Token>;
    /// Called after a fetch's result is stored and its waiters released (no lock held).
    fn fetched(&self, reason: Reason, result: &Result<Arc<Token>>, took: Duration);
    /// Whether a refresh ahead of expiry runs off the callers' threads (not inline mode).
    fn refreshes_in_background(&self) -> bool;
    /// Starts a fetch on a library thread, which must run [`TokenCache::finish_background`].
    /// False if it could not be started.
    fn spawn_fetch(&self) -> bool;
}

pub struct TokenCache {
    current: ArcSwapOption<Token>,
    /// `current` again, for the C API's read path; written with it, under the flight's lock.
    snapshot: Snapshot,
    flight: ArcSwap<Flight>,
    /// A `Reason` for the next fetch that the token cannot tell (invalidated, new credentials),
    /// or 0.
    pending: AtomicU8,
}

struct Flight {
    generation: u64,
    state: Mutex<State>,
    done: Condvar,
    /// The same completion count as `State::completed`, for async waiters.
    completed: tokio::sync::watch::Sender<u64>,
}

#[derive(Default)]
struct State {
    fetcher: Option<Fetcher>,
    /// Fetches finished; a waiter that sees it move knows the fetch it waited for ended.
    completed: u64,
    /// The failure of the last fetch, shared with the callers that waited for it.
    last_error: Option<Error>,
    /// After a failed refresh ahead of expiry, none before this instant, so a down endpoint is
    /// not hit on every call while the old token still works.
    quiet_until: Option<Instant>,
    /// Consecutive failed refreshes ahead of expiry, for the backoff.
    failures: u32,
    /// Ever held a token (first_use against expired).
    had_token: bool,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Fetcher {
    Thread(ThreadId),
    Background,
}

/// What a caller without a fresh token must do.
enum Step {
    Use(Arc<Token>),
    Fetch(Arc<Flight>, Reason),
    Wait(Arc<Flight>, u64),
    /// A fetch runs off the callers' threads (never_wait callers).
    Started(Arc<Flight>, u64),
    Fail(Error),
}

/// The first pause after a failed refresh ahead of expiry; it doubles with each failure.
const FIRST_PAUSE: Duration = Duration::from_millis(500);
/// The longest pause between refresh attempts while the old token is still valid.
const MAX_PAUSE: Duration = Duration::from_secs(30);

impl Default for TokenCache {
    fn default() -> Self {
        TokenCache {
            current: ArcSwapOption::empty(),
            snapshot: Snapshot::default(),
            flight: ArcSwap::from_pointee(Flight::new()),
            pending: AtomicU8::new(0),
        }
    }
}

impl Flight {
    fn new() -> Flight {
        Flight {
            generation: fork::generation(),
            state: Mutex::new(State::default()),
            done: Condvar::new(),
            completed: tokio::sync::watch::channel(0).0,
        }
    }
}

impl TokenCache {
    /// Runs `use_token` on a valid token, fetching one through `source` only when needed. The
    /// common case (a fresh token) takes no lock, allocates nothing and writes nothing shared.
    pub fn with_token<R>(
        &self,
        source: &dyn Source,
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
        let token = self.obtain(source)?;
        Ok(use_token(&token))
    }

    /// The cached-token read of the C API: copies a fresh token and its NUL into `buf` if it
    /// fits in `cap` bytes and returns its length; `None` otherwise (the caller takes
    /// [`TokenCache::with_token`]). No lock, no allocation, no shared write.
    ///
    /// # Safety
    /// `buf` has `cap` writable bytes.
    #[inline]
    pub unsafe fn copy_fresh(&self, buf: *mut u8, cap: usize) -> Option<usize> {
        self.snapshot.copy_fresh(buf, cap)
    }

    /// Replaces the current token. The caller holds this generation's flight lock, which
    /// serializes the snapshot's writers.
    fn set_current(&self, token: Option<Arc<Token>>) {
        self.snapshot.publish(token.as_deref());
        self.current.store(token);
    }

    /// The token if one is usable now, without ever waiting; a refresh or fetch that is due is
    /// started off the caller's thread. `None` means a fetch is needed and was started.
    pub fn usable_now(&self, source: &dyn Source) -> Option<Arc<Token>> {
        if let Some(t) = self.fresh() {
            return Some(t);
        }
        match self.step(true, source) {
            Step::Use(t) => Some(t),
            _ => None,
        }
    }

    /// A valid token, waiting without blocking a thread when a fetch is needed (which runs on
    /// a library thread): for async callers.
    pub async fn token_async(&self, source: &dyn Source) -> Result<Arc<Token>> {
        loop {
            if let Some(t) = self.fresh() {
                return Ok(t);
            }
            match self.step(true, source) {
                Step::Use(t) => return Ok(t),
                Step::Fail(e) => return Err(e),
                // never_wait steps hand every fetch to a library thread: no Fetch here.
                Step::Fetch(flight, _) => self.hand_back(&flight),
                Step::Started(flight, seen) | Step::Wait(flight, seen) => {
                    let mut done = flight.completed.subscribe();
                    let _ = done.wait_for(|n| *n != seen).await;
                    let state = lock(&flight.state);
                    if self.usable().is_none() {
                        if let Some(e) = &state.last_error {
                            return Err(e.clone());
                        }
                    }
                }
            }
        }
    }

    fn obtain(&self, source: &dyn Source) -> Result<Arc<Token>> {
        loop {
            match self.step(false, source) {
                Step::Use(token) => return Ok(token),
                Step::Fail(e) => return Err(e),
                Step::Fetch(flight, reason) => {
                    let result = self.run_fetch(&flight, source, reason);
                    match result {
                        Ok(token) => return Ok(token),
                        // Inside the refresh window a failure is not the caller's problem.
                        Err(e) => return self.usable().ok_or(e),
                    }
                }
                Step::Wait(flight, seen) | Step::Started(flight, seen) => {
                    let mut state = lock(&flight.state);
                    while state.completed == seen {
                        state = flight.done.wait(state).unwrap_or_else(|p| p.into_inner());
                    }
                    if let Some(token) = self.usable() {
                        return Ok(token);
                    }
                    if let Some(e) = &state.last_error {
                        return Err(e.clone());
                    }
                }
            }
        }
    }

    /// Decides, under the flight's lock, what a caller without a fresh token does.
    /// `never_wait`: start what is needed in the background and return at once.
    fn step(&self, never_wait: bool, source: &dyn Source) -> Step {
        let flight = self.flight();
        let mut state = lock(&flight.state);
        let now = Instant::now();
        let current = self.current.load_full();
        if let Some(t) = current.as_ref().filter(|t| now < t.refresh_at) {
            return Step::Use(t.clone());
        }
        let me = std::thread::current().id();
        if let Some(valid) = current.filter(|t| now < t.expires_at) {
            // Inside the refresh window: nobody waits while this token is valid.
            if state.fetcher.is_some() || state.quiet_until.is_some_and(|t| now < t) {
                return Step::Use(valid);
            }
            if never_wait || source.refreshes_in_background() {
                state.fetcher = Some(Fetcher::Background);
                drop(state);
                if source.spawn_fetch() {
                    return Step::Use(valid);
                }
                if never_wait {
                    self.hand_back(&flight);
                    return Step::Use(valid);
                }
                state = lock(&flight.state);
            }
            state.fetcher = Some(Fetcher::Thread(me));
            return Step::Fetch(flight.clone(), self.reason(Reason::RefreshAhead));
        }
        let reason = self.reason(if state.had_token {
            Reason::Expired
        } else {
            Reason::FirstUse
        });
        match state.fetcher {
            Some(_) if never_wait => Step::Started(flight.clone(), state.completed),
            Some(Fetcher::Thread(t)) if t == me => Step::Fail(Error::invalid(
                "cannot wait for a token inside an event callback of the fetch that is getting it",
            )),
            Some(_) => Step::Wait(flight.clone(), state.completed),
            None if never_wait => {
                let seen = state.completed;
                state.fetcher = Some(Fetcher::Background);
                drop(state);
                if source.spawn_fetch() {
                    return Step::Started(flight.clone(), seen);
                }
                self.hand_back(&flight);
                Step::Fail(Error::new(
                    Code::CLOUDAUTH_ERR_INTERNAL,
                    "cannot start cloudauth's library threads for a token fetch",
                ))
            }
            None => {
                state.fetcher = Some(Fetcher::Thread(me));
                Step::Fetch(flight.clone(), reason)
            }
        }
    }

    /// Runs a fetch this caller has claimed, stores its result and releases the waiters.
    fn run_fetch(
        &self,
        flight: &Flight,
        source: &dyn Source,
        reason: Reason,
    ) -> Result<Arc<Token>> {
        let started = Instant::now();
        let result = source.fetch(reason).map(Arc::new);
        let completed = {
            let mut state = lock(&flight.state);
            match &result {
                Ok(token) => {
                    self.set_current(Some(token.clone()));
                    let _ = self.pending.compare_exchange(
                        reason as u8,
                        0,
                        Ordering::AcqRel,
                        Ordering::Acquire,
                    );
                    state.last_error = None;
                    state.quiet_until = None;
                    state.failures = 0;
                    state.had_token = true;
                }
                Err(error) => {
                    state.last_error = Some(error.clone());
                    if let Some(valid) = self.usable() {
                        // Back off with jitter, leaving a few attempts before expiry.
                        let pause = FIRST_PAUSE.saturating_mul(1 << state.failures.min(8));
                        let pause = pause.min(MAX_PAUSE);
                        let pause = pause / 2 + pause.mul_f64(fastrand::f64() / 2.0);
                        let left = valid.expires_at.saturating_duration_since(Instant::now());
                        state.quiet_until = Some(Instant::now() + pause.min(left / 4));
                        state.failures += 1;
                    }
                }
            }
            state.fetcher = None;
            state.completed += 1;
            state.completed
        };
        // The event first, then the waiters: an operation that waited for this fetch finishes
        // after its event was reported (a program that takes events from a queue sees it
        // first). New callers already use the stored token.
        source.fetched(reason, &result, started.elapsed());
        flight.completed.send_if_modified(|seen| {
            let newer = completed > *seen; // never backwards, should a later fetch be faster
            if newer {
                *seen = completed;
            }
            newer
        });
        flight.done.notify_all();
        result
    }

    /// The body of a background refresh started by `Source::refresh_in_background`: fetches,
    /// stores, and on failure leaves the pause after which the next caller starts another.
    /// Returns whether a new token was stored.
    pub fn finish_background(&self, source: &dyn Source) -> bool {
        let flight = self.flight.load_full();
        if flight.generation != fork::generation() {
            return false; // claimed in the parent; the child starts its own
        }
        let reason = self.reason(if self.usable().is_some() {
            Reason::RefreshAhead
        } else if lock(&flight.state).had_token {
            Reason::Expired
        } else {
            Reason::FirstUse
        });
        self.run_fetch(&flight, source, reason).is_ok()
    }

    /// The refresh point of the current token, for a scheduler that refreshes on time.
    pub fn refresh_at(&self) -> Option<Instant> {
        self.current.load().as_ref().map(|t| t.refresh_at)
    }

    /// When the pause after a failed refresh ends, if one is running.
    pub fn quiet_until(&self) -> Option<Instant> {
        lock(&self.flight().state).quiet_until
    }

    /// A receiver that changes each time a fetch of this generation completes, for a
    /// scheduler waiting for a token to refresh.
    pub fn completions(&self) -> tokio::sync::watch::Receiver<u64> {
        self.flight().completed.subscribe()
    }

    /// Claims a refresh for a scheduler (eager mode) when there is a token, it is due and no
    /// fetch runs. No token (none yet, or invalidated) is not due: the next use fetches it.
    pub fn claim_due_refresh(&self) -> bool {
        let flight = self.flight();
        let mut state = lock(&flight.state);
        let now = Instant::now();
        let due = self
            .current
            .load()
            .as_ref()
            .is_some_and(|t| now >= t.refresh_at);
        if !due || state.fetcher.is_some() || state.quiet_until.is_some_and(|t| now < t) {
            return false;
        }
        state.fetcher = Some(Fetcher::Background);
        true
    }

    /// Gives up a claim that could not be started.
    fn hand_back(&self, flight: &Flight) {
        let mut state = lock(&flight.state);
        state.fetcher = None;
        state.completed += 1;
        flight.completed.send_replace(state.completed);
        flight.done.notify_all();
    }

    /// Releases a background claim whose task could not run (used by sources whose spawn
    /// failed after claiming).
    pub fn abandon_background(&self) {
        self.hand_back(&self.flight.load_full());
    }

    /// This generation's flight; a child of fork() replaces the inherited one.
    fn flight(&self) -> Arc<Flight> {
        loop {
            let flight = self.flight.load_full();
            if flight.generation == fork::generation() {
                return flight;
            }
            let fresh = Arc::new(Flight::new());
            {
                // Keep what the parent knew that is only data.
                let mut state = lock(&fresh.state);
                state.had_token = self.current.load().is_some();
            }
            // One flight per generation, also when several threads of a new child get here at
            // once: its lock serializes the fetches and the snapshot's writers.
            let previous = self.flight.compare_and_swap(&flight, fresh.clone());
            if Arc::ptr_eq(&previous, &flight) {
                // The inherited flight may be locked by a thread that does not exist here:
                // keep it, never drop it.
                fork::keep(arc_swap::Guard::into_inner(previous));
                return fresh;
            }
            // Another thread replaced it first: take that one.
        }
    }

    fn reason(&self, derived: Reason) -> Reason {
        Reason::from_u8(self.pending.load(Ordering::Acquire)).unwrap_or(derived)
    }

    /// A token that has not reached its refresh point.
    fn fresh(&self) -> Option<Arc<Token>> {
        self.current
            .load_full()
            .filter(|t| Instant::now() < t.refresh_at)
    }

    /// A token that has not expired, though it may be due for refresh.
    pub fn usable(&self) -> Option<Arc<Token>> {
        self.current
            .load_full()
            .filter(|t| Instant::now() < t.expires_at)
    }

    /// Forgets the token, whichever it is; the next fetch reports `reason`.
    pub fn invalidate(&self, reason: Reason) {
        self.note_cause(reason);
        let flight = self.flight();
        let _state = lock(&flight.state);
        self.set_current(None);
    }

    /// New credentials not yet used stay the reason for the next fetch.
    fn note_cause(&self, reason: Reason) {
        let _ = self
            .pending
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |p| {
                (p != Reason::CredentialsChanged as u8).then_some(reason as u8)
            });
    }

    /// Marks the next fetch, whenever it happens, as caused by `reason` (new credentials).
    pub fn note_reason(&self, reason: Reason) {
        self.pending.store(reason as u8, Ordering::Release);
    }

    /// Forgets the current token only if `rejected` says it is the one a server refused: after
    /// a 401, a token another thread has fetched in the meantime must survive. True if dropped.
    pub fn invalidate_if(&self, reason: Reason, rejected: impl Fn(&Token) -> bool) -> bool {
        let flight = self.flight();
        let _state = lock(&flight.state);
        // Under the lock, no other writer: the current token cannot change between these.
        if self.current.load().as_deref().is_some_and(rejected) {
            self.set_current(None);
            self.note_cause(reason);
            return true;
        }
        false
    }
}

pub fn would_block() -> Error {
    Error::new(
        Code::CLOUDAUTH_ERR_WOULD_BLOCK,
        "no usable token without waiting for the token endpoint; a fetch was started",
    )
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while fetching is caught at the FFI boundary; the state stays sound.
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The threads of a new child of fork() that find the inherited flight at once all end up
    /// with the same fresh one (whose lock serializes the token's writers).
    #[test]
    fn threads_of_a_new_child_share_one_flight() {
        let cache = TokenCache::default();
        let inherited = Arc::as_ptr(&cache.flight()) as usize;
        for _ in 0..10 {
            // SAFETY: the child only runs this test's code, then leaves with _exit.
            let pid = unsafe { libc::fork() };
            if pid == 0 {
                let start = std::sync::Barrier::new(8);
                let seen: Vec<usize> = std::thread::scope(|s| {
                    let threads: Vec<_> = (0..8)
                        .map(|_| {
                            s.spawn(|| {
                                start.wait();
                                Arc::as_ptr(&cache.flight()) as usize
                            })
                        })
                        .collect();
                    threads.into_iter().map(|t| t.join().unwrap()).collect()
                });
                let now = Arc::as_ptr(&cache.flight()) as usize;
                let ok = seen.iter().all(|&p| p == now) && now != inherited;
                // SAFETY: leaves the child at once.
                unsafe { libc::_exit(if ok { 0 } else { 1 }) };
            }
            assert!(pid > 0, "fork failed");
            let mut status = 0;
            // SAFETY: waits for our own child.
            assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
            assert!(
                libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
                "the child's threads got different flights"
            );
        }
    }
}
