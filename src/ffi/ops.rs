use super::request_args::request_args;
use super::{arg_ref, boundary, cloudauth_response, cloudauth_session, free_box};
use crate::error::{cloudauth_result, Code, Error, Result};
use crate::http::request::Response;
use crate::ops::Op;
use std::ffi::{c_char, c_void, CString};
use zeroize::Zeroizing;

/// An asynchronous operation in flight, from `cloudauth_session_request_async` or
/// `cloudauth_session_token_async`.
///
/// Thread-safety: thread-safe; cancel it from any thread.
/// Ownership: the caller frees the handle with `cloudauth_op_free`, before or after the
/// operation finishes; freeing it neither cancels the operation nor waits for it.
pub struct cloudauth_op {
    inner: Op,
}

/// Completion of `cloudauth_session_request_async`. Runs exactly once, on a library thread
/// (never inside the call that started the operation), with no cloudauth lock held, so it may
/// call any cloudauth function, blocking ones included.
/// - `result`: CLOUDAUTH_OK, or the failure's code (CLOUDAUTH_ERR_CANCELLED after
///   `cloudauth_op_cancel` or when the session was freed first).
/// - `response`: on CLOUDAUTH_OK a response the callee now owns and frees with
///   `cloudauth_response_free` (at any time, on any thread); NULL otherwise.
/// - `error`: "" on success, else the one-line message; valid during the call only.
pub type cloudauth_response_fn = Option<
    unsafe extern "C" fn(
        user_data: *mut c_void,
        result: cloudauth_result,
        response: *mut cloudauth_response,
        error: *const c_char,
    ),
>;

/// Completion of `cloudauth_session_token_async`. Runs exactly once, on a library thread,
/// with no cloudauth lock held.
/// - `token`, `token_len`: on CLOUDAUTH_OK the token (NUL-terminated, `token_len` bytes without
///   the NUL), valid during the call only: copy it to keep it; NULL and 0 otherwise.
/// - `error`: "" on success, else the one-line message; valid during the call only.
pub type cloudauth_token_fn = Option<
    unsafe extern "C" fn(
        user_data: *mut c_void,
        result: cloudauth_result,
        token: *const c_char,
        token_len: usize,
        error: *const c_char,
    ),
>;

/// A completion and its pointer; the caller promises `user_data` may be used on a library
/// thread until the completion has run.
struct Completion<F> {
    fun: F,
    user_data: *mut c_void,
}
// SAFETY: the contract of the _async functions.
unsafe impl<F: Send> Send for Completion<F> {}

fn message(error: &Option<Error>) -> CString {
    let text = error.as_ref().map_or("", |e| e.message.as_str());
    super::c_message(text)
}

/// A request's outcome in C form: the code, the response (owned by whoever gets it), the
/// message.
pub(super) fn response_outcome(
    result: Result<Response>,
) -> (cloudauth_result, *mut cloudauth_response, CString) {
    let (code, response, error) = match result {
        Ok(r) => (
            Code::CLOUDAUTH_OK,
            Box::into_raw(Box::new(cloudauth_response::new(r))),
            None,
        ),
        Err(e) => (e.code, std::ptr::null_mut(), Some(e)),
    };
    (code, response, message(&error))
}

/// A token's outcome in C form: the code, the token with its NUL (zeroed when dropped), the
/// message.
pub(super) fn token_outcome(
    result: Result<String>,
) -> (cloudauth_result, Option<Zeroizing<Vec<u8>>>, CString) {
    let (code, token, error) = match result {
        Ok(t) => {
            let mut bytes = Zeroizing::new(t.into_bytes());
            bytes.push(0);
            (Code::CLOUDAUTH_OK, Some(bytes), None)
        }
        Err(e) => (e.code, None, Some(e)),
    };
    (code, token, message(&error))
}

/// Writes the handle, if the caller wants one.
///
/// # Safety
/// `out_op` is NULL or writable.
pub(super) unsafe fn hand_out(op: Op, out_op: *mut *mut cloudauth_op) {
    if let Some(out) = out_op.as_mut() {
        *out = Box::into_raw(Box::new(cloudauth_op { inner: op }));
    }
}

/// Starts `cloudauth_session_request` asynchronously: the same arguments, checks, token
/// handling and 401 resend, but the call returns at once and `done` receives the outcome on a
/// library thread. Every argument is copied before this returns. Hundreds of operations may be
/// in flight at once; they share the library's threads and pooled connections.
///
/// Returns CLOUDAUTH_OK when the operation started: `done` will then run exactly once. Any
/// other result (CLOUDAUTH_ERR_INVALID_ARGUMENT for NULL `s` or `done`, invalid UTF-8, a bad
/// header; CLOUDAUTH_ERR_INSECURE_URL; CLOUDAUTH_ERR_INTERNAL if the library threads cannot
/// start) means nothing started and `done` is never called.
///
/// `out_op` may be NULL; otherwise it receives a handle for `cloudauth_op_cancel`, which the
/// caller frees with `cloudauth_op_free`. The session may be freed with operations in flight:
/// they finish with CLOUDAUTH_ERR_CANCELLED.
///
/// # Safety
/// As for `cloudauth_session_request`; `done` is NULL or a function safe to call from any
/// thread with `user_data`; `out_op` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn cloudauth_session_request_async(
    s: *mut cloudauth_session,
    method: *const c_char,
    url: *const c_char,
    headers: *const *const c_char,
    n_headers: usize,
    body: *const u8,
    body_len: usize,
    done: cloudauth_response_fn,
    user_data: *mut c_void,
    out_op: *mut *mut cloudauth_op,
) -> cloudauth_result {
    boundary(|| {
        let s = arg_ref(s, "session")?;
        let a = request_args(method, url, headers, n_headers, body, body_len)?;
        let fun = done.ok_or_else(|| Error::invalid("done is NULL"))?;
        let completion = Completion { fun, user_data };
        let op = s
            .inner
            .request_async(a.method, a.url, a.headers, a.body, move |result| {
                let completion = completion;
                let (code, response, error) = response_outcome(result);
                // SAFETY: the caller registered a function taking these arguments.
                unsafe { (completion.fun)(completion.user_data, code, response, error.as_ptr()) }
            })?;
        hand_out(op, out_op);
        Ok(())
    })
}

/// Gets a valid token asynchronously: `done` receives it on a library thread, at once (but
/// still on a library thread) when one is cached, or after a fetch that blocks no thread while
/// it waits. Return values and `out_op` as for `cloudauth_session_request_async`.
///
/// # Safety
/// `s` is NULL or a live session; `done` is NULL or a function safe to call from any thread
/// with `user_data`; `out_op` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn cloudauth_session_token_async(
    s: *mut cloudauth_session,
    done: cloudauth_token_fn,
    user_data: *mut c_void,
    out_op: *mut *mut cloudauth_op,
) -> cloudauth_result {
    boundary(|| {
        let s = arg_ref(s, "session")?;
        let fun = done.ok_or_else(|| Error::invalid("done is NULL"))?;
        let completion = Completion { fun, user_data };
        let op = s.inner.token_async(move |result| {
            let completion = completion;
            let (code, token, error) = token_outcome(result);
            let (ptr, len) = token
                .as_ref()
                .map_or((std::ptr::null(), 0), |t| (t.as_ptr().cast(), t.len() - 1));
            // SAFETY: the caller registered a function taking these arguments.
            unsafe { (completion.fun)(completion.user_data, code, ptr, len, error.as_ptr()) }
        })?;
        hand_out(op, out_op);
        Ok(())
    })
}

/// Cancels an operation: its completion then runs (once, on a library thread, soon) with
/// CLOUDAUTH_ERR_CANCELLED, unless it had already finished or is finishing, in which case it
/// reports its real outcome. A no-op when called more than once, and for NULL (which sets the
/// last error). Does not free the handle.
///
/// # Safety
/// `op` is NULL or a live handle.
#[no_mangle]
pub unsafe extern "C" fn cloudauth_op_cancel(op: *mut cloudauth_op) {
    let _ = boundary(|| {
        arg_ref(op, "op")?.inner.cancel();
        Ok(())
    });
}

/// Frees an operation handle. Does not cancel the operation (its completion still runs) and
/// does not wait. NULL is a no-op.
///
/// # Safety
/// `op` is NULL or a handle that has not been freed.
#[no_mangle]
pub unsafe extern "C" fn cloudauth_op_free(op: *mut cloudauth_op) {
    free_box(op)
}
