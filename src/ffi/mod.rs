//! The C ABI: every `extern "C"` function and nothing else. Each body runs inside [`boundary`],
//! which turns errors into a result code plus the thread's last-error message and catches
//! panics, so nothing unwinds into C. Pointers are checked by the `arg_*` helpers.

#![allow(non_camel_case_types)]

mod config;
mod events;
mod info;
mod ops;
mod queue;
mod request_args;
mod response;
mod session;
mod stream;

pub use config::*;
pub use events::*;
pub use info::*;
pub use ops::*;
pub use queue::*;
pub use response::*;
pub use session::*;
pub use stream::*;

use crate::error::{cloudauth_result, Code, Error, Result};
use std::cell::RefCell;
use std::ffi::{c_char, CStr, CString};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};

/// This thread's last error; empty after a success. A non-empty slot counts in
/// `THREADS_WITH_ERROR` until it is emptied or its thread ends.
pub(crate) struct LastError(RefCell<CString>);

impl Drop for LastError {
    fn drop(&mut self) {
        if !self.0.get_mut().is_empty() {
            THREADS_WITH_ERROR.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

thread_local! {
    pub(crate) static LAST_ERROR: LastError = LastError(RefCell::new(CString::default()));
}

/// How many threads hold a last-error message. A success reads it (one load, no write) and
/// touches its own thread-local slot (a `__tls_get_addr` call in a cdylib) only when it is not
/// 0. Relaxed is enough: a thread whose slot is set made the increment itself, and its own
/// later loads see that increment or a later value, all of which still count it (coherence).
static THREADS_WITH_ERROR: AtomicUsize = AtomicUsize::new(0);

const PANIC_MESSAGE: &str =
    "internal error: a bug in cloudauth was caught at the API boundary; please report it";

/// Every message a caller sees (last error, async `error`, event `message`) passes here: one
/// line (NUL and other control characters become spaces, so C never sees it cut short) of at
/// most `MAX_MESSAGE_CHARS`.
fn c_message(message: &str) -> CString {
    CString::new(crate::error::one_line(message)).unwrap_or_default()
}

fn set_last_error(message: &str) {
    let c = c_message(message);
    LAST_ERROR.with(|e| {
        let mut slot = e.0.borrow_mut();
        let was_set = !slot.is_empty();
        *slot = c;
        match (was_set, !slot.is_empty()) {
            (false, true) => THREADS_WITH_ERROR.fetch_add(1, Ordering::Relaxed),
            (true, false) => THREADS_WITH_ERROR.fetch_sub(1, Ordering::Relaxed),
            _ => 0,
        };
    });
}

/// A success: leaves this thread's last error empty.
#[inline(always)]
fn succeeded() -> cloudauth_result {
    if THREADS_WITH_ERROR.load(Ordering::Relaxed) != 0 {
        clear_last_error();
    }
    Code::CLOUDAUTH_OK
}

#[cold]
fn clear_last_error() {
    LAST_ERROR.with(|e| {
        let mut slot = e.0.borrow_mut();
        if !slot.is_empty() {
            *slot = CString::default();
            THREADS_WITH_ERROR.fetch_sub(1, Ordering::Relaxed);
        }
    });
}

/// Runs a fallible body: `Ok` clears the last error, `Err` records it, a panic becomes
/// `CLOUDAUTH_ERR_INTERNAL`.
fn boundary(body: impl FnOnce() -> Result<()>) -> cloudauth_result {
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(())) => succeeded(),
        Ok(Err(e)) => {
            set_last_error(&e.message);
            e.code
        }
        Err(_) => panicked(),
    }
}

/// A panic caught at the boundary.
#[cold]
fn panicked() -> cloudauth_result {
    set_last_error(PANIC_MESSAGE);
    Code::CLOUDAUTH_ERR_INTERNAL
}

/// Like [`boundary`] for functions that return a value: `fallback` on error or panic.
fn boundary_value<T>(fallback: T, body: impl FnOnce() -> Result<T>) -> T {
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(v)) => v,
        Ok(Err(e)) => {
            set_last_error(&e.message);
            fallback
        }
        Err(_) => {
            set_last_error(PANIC_MESSAGE);
            fallback
        }
    }
}

fn null(name: &str) -> Error {
    Error::invalid(format!("{name} is NULL"))
}

/// # Safety
/// `p` is NULL or points to a live `T` for `'a`.
unsafe fn arg_ref<'a, T>(p: *const T, name: &str) -> Result<&'a T> {
    p.as_ref().ok_or_else(|| null(name))
}

/// # Safety
/// `p` is NULL or points to writable memory for a `T`.
unsafe fn arg_out<'a, T>(p: *mut T, name: &str) -> Result<&'a mut T> {
    p.as_mut().ok_or_else(|| null(name))
}

/// # Safety
/// `p` is NULL or points to a NUL-terminated string that lives for `'a`.
unsafe fn arg_str<'a>(p: *const c_char, name: &str) -> Result<&'a str> {
    if p.is_null() {
        return Err(null(name));
    }
    CStr::from_ptr(p).to_str().map_err(|e| {
        Error::invalid(format!(
            "{name} is not valid UTF-8 (bad byte at offset {})",
            e.valid_up_to()
        ))
    })
}

/// # Safety
/// `p` is NULL (allowed only when `len` is 0) or points to `len` readable bytes.
unsafe fn arg_bytes<'a>(p: *const u8, len: usize, name: &str) -> Result<&'a [u8]> {
    match (p.is_null(), len) {
        (true, 0) => Ok(&[]),
        (true, _) => Err(Error::invalid(format!(
            "{name} is NULL but its length is {len}"
        ))),
        (false, _) => Ok(std::slice::from_raw_parts(p, len)),
    }
}

/// Takes ownership back from a pointer handed out by `Box::into_raw`; NULL is a no-op.
///
/// # Safety
/// `p` is NULL or came from `Box::into_raw` and has not been freed.
unsafe fn free_box<T>(p: *mut T) {
    if !p.is_null() {
        let _ = catch_unwind(AssertUnwindSafe(|| drop(Box::from_raw(p))));
    }
}
