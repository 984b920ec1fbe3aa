//! Completion queues in the C ABI: the async operations and events of `ops.rs` and
//! `events.rs`, delivered to a thread of the program's own instead of a library thread
//! (`crate::ops::queue` says why a host wants that).

use super::events::OwnedEvent;
use super::ops::{hand_out, response_outcome, token_outcome};
use super::request_args::request_args;
use super::{
    arg_out, arg_ref, boundary, boundary_value, cloudauth_config, cloudauth_event, cloudauth_op,
    cloudauth_response, cloudauth_session, free_box,
};
use crate::error::{cloudauth_result, Code, Error, Result};
use crate::events::Event;
use crate::ops::driven::Driver;
use crate::ops::queue::Queue;
use std::ffi::{c_char, CString};
use std::sync::Arc;
use std::time::Duration;
use zeroize::Zeroizing;

/// A completion queue: operations started with `cloudauth_session_request_queued` or
/// `cloudauth_session_token_queued`, and the events of sessions made from a config given to
/// `cloudauth_config_set_event_queue`, finish here, and a thread of the program takes them
/// with `cloudauth_queue_wait`. No program code then runs on a library thread, which runtimes
/// such as Mono and the JVM need.
///
/// A caller-driven queue (`cloudauth_queue_new_caller_driven`) runs its operations on the
/// thread that waits on it instead, inside `cloudauth_queue_wait`.
///
/// Thread-safety: thread-safe; any number of threads may wait on one queue.
/// Ownership: created by `cloudauth_queue_new` or `cloudauth_queue_new_caller_driven`, freed
/// by `cloudauth_queue_free`.
pub struct cloudauth_queue {
    inner: Arc<Queue<Box<Completed>>>,
    /// Set for a caller-driven queue: the runtime its operations run on.
    driver: Option<Driver>,
}

/// One finished operation or one event, from `cloudauth_queue_wait`.
///
/// Ownership: the caller's; free it with `cloudauth_completion_free`. Every pointer in it
/// stays valid until then, except `response`, which is the caller's to free.
#[repr(C)]
pub struct cloudauth_completion {
    /// The `tag` given when the operation started, or to `cloudauth_config_set_event_queue`.
    pub tag: u64,
    /// CLOUDAUTH_OK, or the failure's code (CLOUDAUTH_ERR_CANCELLED after
    /// `cloudauth_op_cancel` or when the session was freed first). For an event, its result.
    pub result: cloudauth_result,
    /// A request's response on CLOUDAUTH_OK, now owned by the caller (free it with
    /// `cloudauth_response_free`); NULL otherwise.
    pub response: *mut cloudauth_response,
    /// A token operation's token on CLOUDAUTH_OK (NUL-terminated, `token_len` bytes without
    /// the NUL; zeroed by `cloudauth_completion_free`); NULL and 0 otherwise.
    pub token: *const c_char,
    pub token_len: usize,
    /// "" on success, else the one-line message.
    pub error: *const c_char,
    /// For an event, the event; NULL for an operation.
    pub event: *const cloudauth_event,
}

/// A completion with the storage its pointers point into. `public` comes first, so a
/// `*mut Completed` is a `*mut cloudauth_completion`.
#[repr(C)]
struct Completed {
    public: cloudauth_completion,
    /// Handed over (moved into `public.response`) only by `cloudauth_queue_wait`, so a
    /// completion that nobody took frees its response.
    response: Option<Box<cloudauth_response>>,
    _token: Option<Zeroizing<Vec<u8>>>,
    _error: CString,
    event: Option<OwnedEvent>,
}
// SAFETY: the raw pointers point into the completion's own heap storage.
unsafe impl Send for Completed {}

impl Completed {
    fn new(
        tag: u64,
        result: cloudauth_result,
        response: *mut cloudauth_response,
        token: Option<Zeroizing<Vec<u8>>>,
        error: CString,
        event: Option<OwnedEvent>,
    ) -> Box<Completed> {
        let (token_ptr, token_len) = token
            .as_ref()
            .map_or((std::ptr::null(), 0), |t| (t.as_ptr().cast(), t.len() - 1));
        let mut c = Box::new(Completed {
            public: cloudauth_completion {
                tag,
                result,
                response: std::ptr::null_mut(),
                token: token_ptr,
                token_len,
                error: error.as_ptr(),
                event: std::ptr::null(),
            },
            // SAFETY: `response` is NULL or came from Box::into_raw in response_outcome.
            response: (!response.is_null()).then(|| unsafe { Box::from_raw(response) }),
            _token: token,
            _error: error,
            event,
        });
        if let Some(e) = &c.event {
            c.public.event = &e.event;
        }
        c
    }
}

fn live_queue(q: &cloudauth_queue) -> Result<Arc<Queue<Box<Completed>>>> {
    q.inner.check_process()?;
    Ok(q.inner.clone())
}

/// A new, empty completion queue; NULL if it cannot be made (see `cloudauth_last_error`).
#[no_mangle]
pub extern "C" fn cloudauth_queue_new() -> *mut cloudauth_queue {
    boundary_value(std::ptr::null_mut(), || {
        let inner = Arc::new(Queue::new()?);
        Ok(Box::into_raw(Box::new(cloudauth_queue {
            inner,
            driver: None,
        })))
    })
}

/// A new, empty caller-driven queue; NULL if it cannot be made (see `cloudauth_last_error`).
///
/// Its operations (`cloudauth_session_request_queued`, `cloudauth_session_token_queued`) run
/// on the thread that calls `cloudauth_queue_wait`, inside that call, as `curl_multi_perform`
/// runs libcurl's transfers: no request crosses a thread, which is the fastest way to keep
/// many requests in flight from one thread. The queue has a connection pool of its own.
///
/// What changes from `cloudauth_queue_new`:
/// - Operations make progress only while a thread waits on the queue (a token fetch they need
///   still runs on a library thread). `cloudauth_queue_wait(q, 0, ...)` does the I/O that is
///   ready without waiting; an event loop calls it when it has nothing else to do.
/// - `cloudauth_queue_fd` has no descriptor to give (-1).
/// - A signal does not end a wait: give long waits a timeout.
/// - A wait made inside a cloudauth callback is refused (CLOUDAUTH_ERR_INVALID_ARGUMENT).
/// - An event callback (`cloudauth_config_set_event_callback`) reporting work of an operation
///   (CLOUDAUTH_EVENT_UNAUTHORIZED) runs inside the wait, on the waiting thread; a blocking
///   cloudauth call made from it is refused. Events sent to a queue are not affected.
/// - `cloudauth_queue_free` with operations in flight drops them: no completion arrives for
///   them, and their responses are freed.
///
/// Everything else holds: the token handling and 401 resend, `cloudauth_op_cancel`,
/// CLOUDAUTH_ERR_CANCELLED after the session is freed, events through
/// `cloudauth_config_set_event_queue`, and the refusal in a child of fork().
#[no_mangle]
pub extern "C" fn cloudauth_queue_new_caller_driven() -> *mut cloudauth_queue {
    boundary_value(std::ptr::null_mut(), || {
        let driver = Driver::new()?;
        Ok(Box::into_raw(Box::new(cloudauth_queue {
            inner: Arc::new(Queue::for_driver()),
            driver: Some(driver),
        })))
    })
}

/// Frees a queue. No thread may be waiting on it. Operations still in flight keep its memory
/// until they finish; what they and any untaken completion deliver is discarded (responses
/// freed). Events of sessions given it go nowhere from then on. NULL is a no-op.
///
/// # Safety
/// `q` is NULL or a queue that has not been freed.
#[no_mangle]
pub unsafe extern "C" fn cloudauth_queue_free(q: *mut cloudauth_queue) {
    free_box(q)
}

/// Takes the next completion, waiting up to `timeout_ms` milliseconds for one (a negative
/// value waits without limit, 0 does not wait). Completions come out in the order they
/// finished; with several threads waiting, each completion goes to one of them.
///
/// Returns CLOUDAUTH_OK and writes `*out`, or CLOUDAUTH_ERR_TIMEOUT when none arrived in
/// time, or sooner when the thread caught a signal: that lets a runtime stop a thread
/// waiting here (Mono does at exit); call again. CLOUDAUTH_ERR_INVALID_ARGUMENT for NULL
/// arguments, and in a child of fork() for a queue made before the fork.
///
/// # Safety
/// `q` is NULL or a live queue; `out` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn cloudauth_queue_wait(
    q: *mut cloudauth_queue,
    timeout_ms: i32,
    out: *mut *mut cloudauth_completion,
) -> cloudauth_result {
    boundary(|| {
        let q = arg_ref(q, "queue")?;
        let out = arg_out(out, "out")?;
        let timeout = u64::try_from(timeout_ms).ok().map(Duration::from_millis);
        let taken = match &q.driver {
            Some(driver) => driver.wait(&q.inner, timeout)?,
            None => q.inner.wait(timeout)?,
        };
        let Some(mut c) = taken else {
            return Err(Error::new(
                Code::CLOUDAUTH_ERR_TIMEOUT,
                format!(
                    "no completion arrived within {timeout_ms} ms (or a signal ended the wait)"
                ),
            ));
        };
        if let Some(r) = c.response.take() {
            c.public.response = Box::into_raw(r);
        }
        *out = Box::into_raw(c).cast();
        Ok(())
    })
}

/// The queue's descriptor, for programs whose event loop waits on descriptors (asyncio's
/// `add_reader`, epoll, libuv): it is readable while a completion may be waiting. When it is,
/// call `cloudauth_queue_wait(q, 0, ...)` until it returns CLOUDAUTH_ERR_TIMEOUT; that also
/// makes it unreadable again. Do not read, write or close it. -1 for NULL and for a
/// caller-driven queue (whose operations progress only inside `cloudauth_queue_wait`).
///
/// # Safety
/// `q` is NULL or a live queue.
#[no_mangle]
pub unsafe extern "C" fn cloudauth_queue_fd(q: *const cloudauth_queue) -> i32 {
    boundary_value(-1, || {
        let q = arg_ref(q, "queue")?;
        let fd = q.inner.fd().ok_or_else(|| {
            Error::invalid(
                "a caller-driven queue has no descriptor: its operations progress only inside cloudauth_queue_wait",
            )
        })?;
        Ok(fd)
    })
}

/// Frees a completion from `cloudauth_queue_wait` (not its response, which is the caller's).
/// NULL is a no-op.
///
/// # Safety
/// `c` is NULL or a completion that has not been freed.
#[no_mangle]
pub unsafe extern "C" fn cloudauth_completion_free(c: *mut cloudauth_completion) {
    free_box(c.cast::<Completed>())
}

/// `cloudauth_session_request_async` with its completion delivered to `q`, carrying `tag`,
/// instead of a callback. The same checks, results and `out_op`; on CLOUDAUTH_OK exactly one
/// completion will arrive in `q`.
///
/// # Safety
/// As for `cloudauth_session_request_async`; `q` is NULL or a live queue.
#[no_mangle]
pub unsafe extern "C" fn cloudauth_session_request_queued(
    s: *mut cloudauth_session,
    method: *const c_char,
    url: *const c_char,
    headers: *const *const c_char,
    n_headers: usize,
    body: *const u8,
    body_len: usize,
    q: *mut cloudauth_queue,
    tag: u64,
    out_op: *mut *mut cloudauth_op,
) -> cloudauth_result {
    boundary(|| {
        let s = arg_ref(s, "session")?;
        let a = request_args(method, url, headers, n_headers, body, body_len)?;
        let q = arg_ref(q, "queue")?;
        let queue = live_queue(q)?;
        let done = move |result| {
            let (code, response, error) = response_outcome(result);
            queue.push(Completed::new(tag, code, response, None, error, None));
        };
        let op = match &q.driver {
            Some(d) => s
                .inner
                .request_driven(d, a.method, a.url, a.headers, a.body, done)?,
            None => s
                .inner
                .request_async(a.method, a.url, a.headers, a.body, done)?,
        };
        hand_out(op, out_op);
        Ok(())
    })
}

/// `cloudauth_session_token_async` with its completion delivered to `q`, carrying `tag`.
///
/// # Safety
/// `s` is NULL or a live session; `q` is NULL or a live queue; `out_op` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn cloudauth_session_token_queued(
    s: *mut cloudauth_session,
    q: *mut cloudauth_queue,
    tag: u64,
    out_op: *mut *mut cloudauth_op,
) -> cloudauth_result {
    boundary(|| {
        let s = arg_ref(s, "session")?;
        let q = arg_ref(q, "queue")?;
        let queue = live_queue(q)?;
        let done = move |result| {
            let (code, token, error) = token_outcome(result);
            let null = std::ptr::null_mut();
            queue.push(Completed::new(tag, code, null, token, error, None));
        };
        let op = match &q.driver {
            Some(d) => s.inner.token_driven(d, done)?,
            None => s.inner.token_async(done)?,
        };
        hand_out(op, out_op);
        Ok(())
    })
}

/// Sends the events of every session later made from `cfg` to `q`, each as a completion
/// with `tag`, `result` and `event` set; NULL `q` removes it. The sessions keep the queue's
/// memory alive.
///
/// With an event callback set as well (`cloudauth_config_set_event_callback`), only the events
/// reported on library threads (background refreshes, async operations) go to the queue; those
/// reported on a caller's thread, during a blocking call, still go to the callback, on that
/// thread, before the call returns.
///
/// # Safety
/// `cfg` is NULL or a live config; `q` is NULL or a live queue.
#[no_mangle]
pub unsafe extern "C" fn cloudauth_config_set_event_queue(
    cfg: *mut cloudauth_config,
    q: *mut cloudauth_queue,
    tag: u64,
) -> cloudauth_result {
    boundary(|| {
        let cfg = arg_out(cfg, "cfg")?;
        let sink = match q.as_ref() {
            None => None,
            Some(q) => {
                let queue = live_queue(q)?;
                Some(Arc::new(move |e: &Event<'_>| {
                    let error = CString::default();
                    let event = Some(OwnedEvent::new(e));
                    let null = std::ptr::null_mut();
                    queue.push(Completed::new(tag, e.result, null, None, error, event));
                }) as crate::events::Sink)
            }
        };
        cfg.inner.events.set_queue(sink);
        Ok(())
    })
}
