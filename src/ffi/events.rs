use super::{arg_out, boundary, cloudauth_config};
use crate::error::cloudauth_result;
use crate::events::{Event, EventKind};
use std::ffi::{c_char, c_void, CString};
use std::sync::Arc;

/// What happened (the `kind` of a `cloudauth_event`). The values are ABI.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum cloudauth_event_kind {
    /// A new token arrived.
    CLOUDAUTH_EVENT_TOKEN_FETCHED = 1,
    /// A token fetch ended in an error, after its retries.
    CLOUDAUTH_EVENT_TOKEN_FETCH_FAILED = 2,
    /// A transient token-endpoint failure; the next attempt follows after `duration_ms`.
    CLOUDAUTH_EVENT_RETRY = 3,
    /// An API answered 401: the token was dropped and the request resent.
    CLOUDAUTH_EVENT_UNAUTHORIZED = 4,
    /// The file or Redis token cache failed; the call went on without it.
    CLOUDAUTH_EVENT_CACHE_UNAVAILABLE = 5,
}

/// One event, passed to a `cloudauth_event_fn`. Every pointer in it is valid during the call
/// only; no field ever holds a secret or a token.
#[repr(C)]
pub struct cloudauth_event {
    pub kind: cloudauth_event_kind,
    /// Why a token was asked for: "first_use", "refresh_ahead", "expired", "invalidated",
    /// "unauthorized", "credentials_changed"; "" for the other kinds.
    pub reason: *const c_char,
    /// CLOUDAUTH_OK, or the failure's code.
    pub result: cloudauth_result,
    /// The HTTP status behind the event; 0 when there was no HTTP answer.
    pub http_status: u16,
    /// How long the fetch took; for CLOUDAUTH_EVENT_RETRY, the wait before the next attempt.
    pub duration_ms: u64,
    /// One line for a person; "" when there is nothing to add.
    pub message: *const c_char,
}

/// Receives the events of the sessions made from a config. Runs on whatever thread did the
/// work (a caller's thread, or a library thread for background refreshes and async
/// operations), with no cloudauth lock held, so it may call any cloudauth function. It must
/// return quickly: the operation that reported the event waits for it.
pub type cloudauth_event_fn =
    Option<unsafe extern "C" fn(user_data: *mut c_void, event: *const cloudauth_event)>;

/// Called once with the `user_data` of `cloudauth_config_set_event_callback_with_release`
/// when no config or session holds the callback any more.
pub type cloudauth_release_fn = Option<unsafe extern "C" fn(user_data: *mut c_void)>;

/// The C callback and its pointer; the caller promises `user_data` may be used from any thread.
/// Shared by the config and every session made from it; the last one to drop it releases
/// `user_data`.
struct CSink {
    fun: unsafe extern "C" fn(*mut c_void, *const cloudauth_event),
    user_data: *mut c_void,
    release: cloudauth_release_fn,
}

impl Drop for CSink {
    fn drop(&mut self) {
        if let Some(release) = self.release {
            // SAFETY: the contract of cloudauth_config_set_event_callback_with_release. A
            // panic cannot come out of a C function; an unwinding one is the caller's bug.
            unsafe { release(self.user_data) }
        }
    }
}
// SAFETY: the contract of cloudauth_config_set_event_callback.
unsafe impl Send for CSink {}
unsafe impl Sync for CSink {}

/// An event in C form with the strings it points into; moving it keeps the pointers valid
/// (they point into the strings' heap buffers).
pub(super) struct OwnedEvent {
    pub(super) event: cloudauth_event,
    _reason: CString,
    _message: CString,
}

impl OwnedEvent {
    pub(super) fn new(e: &Event<'_>) -> OwnedEvent {
        let kind = match e.kind {
            EventKind::TokenFetched => cloudauth_event_kind::CLOUDAUTH_EVENT_TOKEN_FETCHED,
            EventKind::TokenFetchFailed => cloudauth_event_kind::CLOUDAUTH_EVENT_TOKEN_FETCH_FAILED,
            EventKind::Retry => cloudauth_event_kind::CLOUDAUTH_EVENT_RETRY,
            EventKind::Unauthorized => cloudauth_event_kind::CLOUDAUTH_EVENT_UNAUTHORIZED,
            EventKind::CacheUnavailable => cloudauth_event_kind::CLOUDAUTH_EVENT_CACHE_UNAVAILABLE,
        };
        let reason = CString::new(e.reason.map_or("", |r| r.name())).unwrap_or_default();
        let message = super::c_message(e.message);
        OwnedEvent {
            event: cloudauth_event {
                kind,
                reason: reason.as_ptr(),
                result: e.result,
                http_status: e.http_status,
                duration_ms: e.duration.as_millis().min(u64::MAX as u128) as u64,
                message: message.as_ptr(),
            },
            _reason: reason,
            _message: message,
        }
    }
}

impl CSink {
    fn call(&self, e: &Event<'_>) {
        let owned = OwnedEvent::new(e);
        // SAFETY: the caller registered a function that takes exactly these arguments.
        unsafe { (self.fun)(self.user_data, &owned.event) }
    }
}

/// Registers `fn` to receive the events of every session later made from `cfg` (a session
/// keeps the callback it was made with). `fn` NULL removes it. `user_data` is passed to each
/// call unchanged; it must stay valid, and be usable from any thread, for as long as a
/// session made from `cfg` lives.
///
/// Errors: CLOUDAUTH_ERR_INVALID_ARGUMENT when `cfg` is NULL.
///
/// # Safety
/// `cfg` is NULL or a live config; `fn` is NULL or a function safe to call from any thread.
#[no_mangle]
pub unsafe extern "C" fn cloudauth_config_set_event_callback(
    cfg: *mut cloudauth_config,
    r#fn: cloudauth_event_fn,
    user_data: *mut c_void,
) -> cloudauth_result {
    boundary(|| set_callback(cfg, r#fn, user_data, None))
}

/// As `cloudauth_config_set_event_callback`, and when neither `cfg` nor any session made from
/// it holds the callback any more, `release(user_data)` runs once (on whatever thread let go
/// last: the one that frees the config or the last session, replaces the callback, or a
/// library thread whose work for a freed session ends). After `release` the callback is never
/// called again, so `release` may free what `user_data` points to. `release` NULL is the plain
/// call. When `fn` is NULL, or `cfg` is NULL (CLOUDAUTH_ERR_INVALID_ARGUMENT), `release` is
/// not called: nothing was registered.
///
/// # Safety
/// As for `cloudauth_config_set_event_callback`; `release` is NULL or a function safe to call
/// from any thread.
#[no_mangle]
pub unsafe extern "C" fn cloudauth_config_set_event_callback_with_release(
    cfg: *mut cloudauth_config,
    r#fn: cloudauth_event_fn,
    user_data: *mut c_void,
    release: cloudauth_release_fn,
) -> cloudauth_result {
    boundary(|| set_callback(cfg, r#fn, user_data, release))
}

/// # Safety
/// As for `cloudauth_config_set_event_callback_with_release`.
unsafe fn set_callback(
    cfg: *mut cloudauth_config,
    fun: cloudauth_event_fn,
    user_data: *mut c_void,
    release: cloudauth_release_fn,
) -> crate::error::Result<()> {
    let cfg = arg_out(cfg, "cfg")?;
    cfg.inner.events.set_callback(fun.map(|fun| {
        let sink = CSink {
            fun,
            user_data,
            release,
        };
        Arc::new(move |e: &Event<'_>| sink.call(e)) as crate::events::Sink
    }));
    Ok(())
}

/// Stops every event callback of this process for good: from its return on, no
/// `cloudauth_event_fn` is called (work still in progress goes on; events reported on library
/// threads still go to event queues, those of a caller's thread are dropped). For a binding
/// whose host is shutting down: the Python binding calls it at interpreter exit, so that a
/// daemon thread in a blocking call never calls into a finalizing interpreter. A callback
/// already running finishes. Never fails.
#[no_mangle]
pub extern "C" fn cloudauth_stop_event_callbacks() {
    let _ = boundary(|| {
        crate::events::stop_callbacks();
        Ok(())
    });
}
