//! What a session reports to the program: events as they happen (README.md, "Token
//! lifecycle"). A sink is called on whatever thread did the work, never with a library lock
//! held, so it may call back into cloudauth. Fields never carry a secret or a token.

use crate::error::{Code, Error};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// ABI values of `cloudauth_event_kind`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventKind {
    TokenFetched = 1,
    TokenFetchFailed = 2,
    Retry = 3,
    Unauthorized = 4,
    CacheUnavailable = 5,
}

impl EventKind {
    pub fn name(self) -> &'static str {
        match self {
            EventKind::TokenFetched => "token_fetched",
            EventKind::TokenFetchFailed => "token_fetch_failed",
            EventKind::Retry => "retry",
            EventKind::Unauthorized => "unauthorized",
            EventKind::CacheUnavailable => "cache_unavailable",
        }
    }
}

/// Why a token was asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Reason {
    FirstUse = 1,
    RefreshAhead = 2,
    Expired = 3,
    Invalidated = 4,
    Unauthorized = 5,
    CredentialsChanged = 6,
}

impl Reason {
    pub fn name(self) -> &'static str {
        match self {
            Reason::FirstUse => "first_use",
            Reason::RefreshAhead => "refresh_ahead",
            Reason::Expired => "expired",
            Reason::Invalidated => "invalidated",
            Reason::Unauthorized => "unauthorized",
            Reason::CredentialsChanged => "credentials_changed",
        }
    }

    pub fn from_u8(v: u8) -> Option<Reason> {
        [
            Reason::FirstUse,
            Reason::RefreshAhead,
            Reason::Expired,
            Reason::Invalidated,
            Reason::Unauthorized,
            Reason::CredentialsChanged,
        ]
        .into_iter()
        .find(|r| *r as u8 == v)
    }
}

#[derive(Clone, Debug)]
pub struct Event<'a> {
    pub kind: EventKind,
    /// `None` for events that are not about asking for a token.
    pub reason: Option<Reason>,
    pub result: Code,
    /// 0 when there was no HTTP answer.
    pub http_status: u16,
    /// How long the fetch took; for `Retry`, the wait before the next attempt.
    pub duration: Duration,
    pub message: &'a str,
}

impl Event<'_> {
    /// The event for a fetch that ended in `error`.
    pub fn failed(
        kind: EventKind,
        reason: Option<Reason>,
        error: &Error,
        duration: Duration,
    ) -> Event<'_> {
        Event {
            kind,
            reason,
            result: error.code,
            http_status: error.http_status,
            duration,
            message: &error.message,
        }
    }
}

pub type Sink = Arc<dyn Fn(&Event<'_>) + Send + Sync>;

/// Set once a binding's host is shutting down (`cloudauth_stop_event_callbacks`): from then on
/// no event callback runs in this process. Read on the event path only.
static CALLBACKS_STOPPED: AtomicBool = AtomicBool::new(false);

pub fn stop_callbacks() {
    CALLBACKS_STOPPED.store(true, Ordering::SeqCst);
}

/// Where a session's events go: a callback, a completion queue, both, or nowhere.
///
/// With both, an event reported on a library thread (a background refresh, an async
/// operation) goes to the queue and one reported on a caller's thread (a blocking call) to the
/// callback, so a blocking call's events still arrive before it returns while hosts that must
/// not run code on library threads (Python at exit, Mono) never do.
#[derive(Clone, Default)]
pub struct Events {
    callback: Option<Sink>,
    queue: Option<Sink>,
}

impl Events {
    /// Only a callback (or none).
    pub fn new(sink: Option<Sink>) -> Self {
        Events {
            callback: sink,
            queue: None,
        }
    }

    pub fn set_callback(&mut self, sink: Option<Sink>) {
        self.callback = sink;
    }

    pub fn set_queue(&mut self, sink: Option<Sink>) {
        self.queue = sink;
    }

    pub fn emit(&self, event: &Event<'_>) {
        let callback = self
            .callback
            .as_ref()
            .filter(|_| !CALLBACKS_STOPPED.load(Ordering::SeqCst));
        let sink = match (callback, &self.queue) {
            (Some(c), Some(q)) => Some(if crate::runtime::on_library_thread() {
                q
            } else {
                c
            }),
            (Some(c), None) => Some(c),
            // With callbacks stopped, a caller's thread's events are dropped, not queued:
            // their host expects them on that thread or not at all.
            (None, Some(q)) if self.callback.is_none() || crate::runtime::on_library_thread() => {
                Some(q)
            }
            _ => None,
        };
        if let Some(sink) = sink {
            // A panicking Rust sink must not take the library's caller with it.
            let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| sink(event)));
        }
    }
}

impl std::fmt::Debug for Events {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Events(callback: {}, queue: {})",
            self.callback.is_some(),
            self.queue.is_some()
        )
    }
}
