//! Streamed responses: the body handed to the caller's callback piece by piece as it arrives,
//! so a response of any size needs no more memory than one piece.

use super::{arg_out, arg_ref, boundary, cloudauth_response, cloudauth_session};
use crate::error::{cloudauth_result, Code, Error, Result};
use crate::ffi::request_args::request_args;
use crate::http::pipeline::BodySink;
use crate::http::request::Response;
use reqwest::header::HeaderMap;
use reqwest::StatusCode;
use std::ffi::{c_char, c_int, c_void};

/// Called once per streamed request, with the final answer's status and headers, before any
/// byte of its body (redirects that were followed and a 401 that was resent never reach it).
/// `head` is valid during the call only; its body is empty. Return 0 to go on; anything else
/// stops the request, which then fails with CLOUDAUTH_ERR_CANCELLED.
pub type cloudauth_head_fn =
    Option<unsafe extern "C" fn(user_data: *mut c_void, head: *const cloudauth_response) -> c_int>;

/// Called for each piece of the body, in order, on the thread that called
/// `cloudauth_session_request_stream`; `data` (`len` bytes, never 0) is valid during the call
/// only. Return 0 to go on; anything else stops the request, which then fails with
/// CLOUDAUTH_ERR_CANCELLED (the connection is closed, not reused). The time the callback takes
/// counts in `timeout_ms`.
pub type cloudauth_write_fn =
    Option<unsafe extern "C" fn(user_data: *mut c_void, data: *const u8, len: usize) -> c_int>;

/// Where a streamed response goes. `write` is required; `head` may be NULL (the status and
/// headers are in the returned response too). `user_data` is passed to both as is.
#[repr(C)]
pub struct cloudauth_body_sink {
    pub head: cloudauth_head_fn,
    pub write: cloudauth_write_fn,
    pub user_data: *mut c_void,
}

/// `cloudauth_session_request`, with the response body streamed to `sink` instead of held in
/// the response: a download of any size in the memory of one piece (at most about 16 KiB to
/// 64 KiB, whatever the network delivers at once).
///
/// - `method`, `url`, `headers`, `n_headers`, `body`, `body_len`: as for
///   `cloudauth_session_request` (401 handling, redirects and resends too).
/// - `sink`: its `head` (if any) gets the final status and headers, then `write` gets the
///   body. `max_response_bytes` caps the whole body: past it (or when `Content-Length` says it
///   will be) the request fails with CLOUDAUTH_ERR_TOO_LARGE, no byte beyond the cap having
///   reached `write`. `timeout_ms` bounds the whole exchange, body and callbacks included.
///
/// On CLOUDAUTH_OK `*out` holds the response (status and headers; an empty body), freed with
/// `cloudauth_response_free`. On failure `*out` is untouched, and `write` may have received
/// part of the body: the caller discards it. Errors: those of `cloudauth_session_request`,
/// and CLOUDAUTH_ERR_CANCELLED when a callback stopped the request.
///
/// # Safety
/// As for `cloudauth_session_request`; `sink` is NULL or points to a sink whose callbacks may
/// be called with its `user_data` until this call returns.
#[no_mangle]
pub unsafe extern "C" fn cloudauth_session_request_stream(
    s: *mut cloudauth_session,
    method: *const c_char,
    url: *const c_char,
    headers: *const *const c_char,
    n_headers: usize,
    body: *const u8,
    body_len: usize,
    sink: *const cloudauth_body_sink,
    out: *mut *mut cloudauth_response,
) -> cloudauth_result {
    boundary(|| {
        let s = arg_ref(s, "session")?;
        let a = request_args(method, url, headers, n_headers, body, body_len)?;
        let sink = arg_ref(sink, "sink")?;
        let Some(write) = sink.write else {
            return Err(Error::invalid("sink: write is NULL"));
        };
        let out = arg_out(out, "out")?;
        let mut to = CSink {
            head: sink.head,
            write,
            user_data: sink.user_data,
        };
        let response = s
            .inner
            .request_stream(a.method, a.url, a.headers, a.body, &mut to)?;
        *out = Box::into_raw(Box::new(cloudauth_response::new(response)));
        Ok(())
    })
}

struct CSink {
    head: cloudauth_head_fn,
    write: unsafe extern "C" fn(*mut c_void, *const u8, usize) -> c_int,
    user_data: *mut c_void,
}

// The sink is used only inside the call that made it, on the caller's own thread (its
// runtime); `Send` is asked for by the pipeline's types, which also serve other runtimes.
unsafe impl Send for CSink {}

fn stopped(which: &str, rc: c_int) -> Error {
    Error::new(
        Code::CLOUDAUTH_ERR_CANCELLED,
        format!(
            "streaming the response: the {which} callback stopped the request (it returned {rc})"
        ),
    )
}

impl BodySink for CSink {
    fn head(&mut self, status: StatusCode, headers: &HeaderMap) -> Result<()> {
        let Some(head) = self.head else {
            return Ok(());
        };
        let shown = cloudauth_response::new(Response {
            status: status.as_u16(),
            headers: headers.clone(),
            body: Vec::new(),
        });
        match unsafe { head(self.user_data, &shown) } {
            0 => Ok(()),
            rc => Err(stopped("head", rc)),
        }
    }

    fn data(&mut self, piece: &[u8]) -> Result<()> {
        if piece.is_empty() {
            return Ok(());
        }
        match unsafe { (self.write)(self.user_data, piece.as_ptr(), piece.len()) } {
            0 => Ok(()),
            rc => Err(stopped("write", rc)),
        }
    }
}
