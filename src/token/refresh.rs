//! Refreshes off the callers' threads (`refresh_mode` background and eager), on the library
//! runtime (`runtime`).
//!
//! - A background fetch runs on a blocking thread of the library runtime: the fetch itself is
//!   the same blocking code the callers run (retries sleep, events fire with no lock held).
//! - The eager refresher is one task per session and process. It sleeps until the token's
//!   refresh point and refreshes it, so an idle session keeps a valid token. With no token
//!   (none yet, or invalidated) it waits: the next use fetches one. It holds only a
//!   `Weak` of the session between refreshes and stops as soon as the session is freed.

use super::cache::{Source, TokenCache};
use crate::runtime;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// After a failed eager refresh with no valid token left, the first pause; doubles up to MAX.
const EAGER_FIRST_PAUSE: Duration = Duration::from_millis(500);
const EAGER_MAX_PAUSE: Duration = Duration::from_secs(30);

/// What the refreshers need of a session: its token cache (whose `Source` is the session
/// itself) and whether it was freed. A trait, so that this module sits below the session.
pub(crate) trait Refreshable: Source + Send + Sync + 'static {
    fn cache(&self) -> &TokenCache;
    fn is_closed(&self) -> bool;
}

/// Runs a fetch the cache has claimed for the library threads. False if they cannot start.
pub(crate) fn spawn_fetch<S: Refreshable>(inner: Arc<S>) -> bool {
    let Ok(library) = runtime::library() else {
        return false;
    };
    library.spawn_blocking(move || {
        if inner.is_closed() {
            // Freed before this ran: no token request after cloudauth_session_free.
            inner.cache().abandon_background();
            return;
        }
        inner.cache().finish_background(&*inner);
    });
    true
}

/// Starts the eager refresher of a session. False if the library threads cannot start.
pub(crate) fn start_eager<S: Refreshable>(session: Weak<S>, closed: watch::Receiver<bool>) -> bool {
    let Ok(library) = runtime::library() else {
        return false;
    };
    library.spawn(eager(session, closed));
    true
}

async fn eager<S: Refreshable>(session: Weak<S>, mut closed: watch::Receiver<bool>) {
    let mut failures = 0u32;
    loop {
        let wake = {
            let Some(inner) = session.upgrade() else {
                return;
            };
            let now = Instant::now();
            // Subscribed first, so a fetch that completes right after the look is not missed.
            let mut completed = inner.cache().completions();
            match inner.cache().refresh_at() {
                // Not yet due, or another caller's refresh pause still runs.
                Some(at) => at.max(inner.cache().quiet_until().unwrap_or(at)).max(now),
                None => {
                    // No token (none yet, or invalidated): its next use fetches one, and
                    // refreshing starts again from there. Wait for a fetch to complete.
                    drop(inner);
                    let replaced = tokio::select! {
                        changed = completed.changed() => changed.is_err(),
                        _ = closed.wait_for(|c| *c) => return,
                    };
                    if replaced {
                        // Its flight was replaced (fork): look again shortly.
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                    failures = 0;
                    continue;
                }
            }
        };
        let wake = if failures > 0 {
            let pause = EAGER_FIRST_PAUSE
                .saturating_mul(1 << (failures - 1).min(8))
                .min(EAGER_MAX_PAUSE);
            wake.max(Instant::now() + pause / 2 + pause.mul_f64(fastrand::f64() / 2.0))
        } else {
            wake
        };
        tokio::select! {
            _ = tokio::time::sleep_until(wake.into()) => {}
            _ = closed.wait_for(|c| *c) => return,
        }
        let Some(inner) = session.upgrade() else {
            return;
        };
        if inner.is_closed() {
            return;
        }
        if !inner.cache().claim_due_refresh() {
            // Someone refreshed meanwhile (the next round sleeps till the new refresh point),
            // or a fetch runs: look again shortly rather than spin.
            drop(inner);
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        }
        let refreshed =
            tokio::task::spawn_blocking(move || inner.cache().finish_background(&*inner))
                .await
                .unwrap_or(false);
        failures = if refreshed { 0 } else { failures + 1 };
    }
}
