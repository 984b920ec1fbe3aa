//! The C ABI: every `extern "C"` function and nothing else. Each body runs inside one of the
//! `boundary*` functions below, which turn errors into a result code plus the thread's
//! last-error message, empty that message after a success, and catch panics, so nothing
//! unwinds into C. Pointers are checked by the `arg_*` helpers. tests/ffi_contract.rs calls
//! every function the header declares with a panic injected (debug builds, `testing` below)
//! and fails for one whose body runs outside a boundary.

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

/// Records `message` as this thread's last error. `try_with`: a call made while the thread's
/// locals are being destroyed (a C thread-exit handler) must not panic here, inside the
/// boundary's own error path.
fn set_last_error(message: &str) {
    let c = c_message(message);
    let _ = LAST_ERROR.try_with(|e| {
        let Ok(mut slot) = e.0.try_borrow_mut() else {
            return;
        };
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
fn succeeded() {
    if THREADS_WITH_ERROR.load(Ordering::Relaxed) != 0 {
        clear_last_error();
    }
}

#[cold]
fn clear_last_error() {
    let _ = LAST_ERROR.try_with(|e| {
        let Ok(mut slot) = e.0.try_borrow_mut() else {
            return;
        };
        if !slot.is_empty() {
            *slot = CString::default();
            THREADS_WITH_ERROR.fetch_sub(1, Ordering::Relaxed);
        }
    });
}

/// The boundary itself: runs `body` catching any panic; a success empties the last error
/// (unless `keep`), an error records its message and a panic records [`PANIC_MESSAGE`], and
/// both return `fail(code)`. Every other `boundary*` function is a shape of this one.
#[inline(always)]
fn guard<T>(keep: bool, fail: impl FnOnce(Code) -> T, body: impl FnOnce() -> Result<T>) -> T {
    match catch_unwind(AssertUnwindSafe(|| {
        testing::maybe_panic();
        body()
    })) {
        Ok(Ok(v)) => {
            if !keep {
                succeeded();
            }
            v
        }
        Ok(Err(e)) => {
            set_last_error(&e.message);
            fail(e.code)
        }
        Err(_) => panicked(fail),
    }
}

/// A panic caught at the boundary.
#[cold]
#[inline(never)]
fn panicked<T>(fail: impl FnOnce(Code) -> T) -> T {
    set_last_error(PANIC_MESSAGE);
    fail(Code::CLOUDAUTH_ERR_INTERNAL)
}

/// For functions that return a result code: `Ok` is CLOUDAUTH_OK and empties the last error,
/// `Err` records it and returns its code, a panic is CLOUDAUTH_ERR_INTERNAL.
fn boundary(body: impl FnOnce() -> Result<()>) -> cloudauth_result {
    guard(false, |code| code, || body().map(|()| Code::CLOUDAUTH_OK))
}

/// For functions that return a value: `Ok(v)` is `v` and empties the last error; an error or
/// a panic records its message and returns `fallback`.
fn boundary_value<T>(fallback: T, body: impl FnOnce() -> Result<T>) -> T {
    guard(false, |_| fallback, body)
}

/// For the functions that cannot fail and leave the last error as it was (the `*_free`
/// functions, `cloudauth_last_error`, `cloudauth_version`, `cloudauth_result_name`), so a
/// caller can free what failed before reading the message. A panic still records its message
/// and returns `fallback`.
fn boundary_keep<T>(fallback: T, body: impl FnOnce() -> T) -> T {
    guard(true, |_| fallback, || Ok(body()))
}

/// The boundary of the cached-token read: `fast` runs first and, when it did the whole job
/// (`true`), the call is a success with no `Result` built; otherwise `slow` runs inside
/// [`boundary`] and explains the failure.
#[inline(always)]
fn boundary_fast(
    fast: impl FnOnce() -> bool,
    slow: impl FnOnce() -> Result<()>,
) -> cloudauth_result {
    match catch_unwind(AssertUnwindSafe(|| {
        testing::maybe_panic();
        fast()
    })) {
        Ok(true) => {
            succeeded();
            Code::CLOUDAUTH_OK
        }
        Ok(false) => boundary(slow),
        Err(_) => panicked(|code| code),
    }
}

/// Fault injection for tests/ffi_contract.rs, in debug builds only (a release build has no
/// such hook): `panic_in_next_boundary` makes the next boundary this thread enters panic
/// inside its `catch_unwind`, so a test can see every export catch it.
#[doc(hidden)]
pub mod testing {
    #[cfg(debug_assertions)]
    thread_local! {
        static PANIC_NEXT: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
    }

    /// Arms the injected panic for this thread's next boundary.
    #[cfg(debug_assertions)]
    pub fn panic_in_next_boundary() {
        PANIC_NEXT.with(|p| p.set(true));
    }

    /// Whether an injected panic is still armed (the export did not enter a boundary).
    #[cfg(debug_assertions)]
    pub fn panic_still_armed() -> bool {
        PANIC_NEXT.with(|p| p.replace(false))
    }

    #[inline(always)]
    pub(super) fn maybe_panic() {
        #[cfg(debug_assertions)]
        if PANIC_NEXT.try_with(|p| p.replace(false)).unwrap_or(false) {
            panic!("panic injected by ffi::testing");
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
    boundary_keep((), || {
        if !p.is_null() {
            drop(Box::from_raw(p));
        }
    })
}
