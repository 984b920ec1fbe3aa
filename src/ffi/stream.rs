//! Streamed bodies: a response's handed to the caller's callback piece by piece as it
//! arrives, a request's read from the caller's callback while it is written, so a body of any
//! size needs no more memory than one piece.

use super::{arg_out, arg_ref, boundary, cloudauth_response, cloudauth_session};
use crate::error::{cloudauth_result, Code, Error, Result};
use crate::ffi::request_args::{header_lines, request_args};
use crate::http::body::BodySource;
use crate::http::pipeline::BodySink;
use crate::http::request::Response;
use reqwest::header::HeaderMap;
use reqwest::StatusCode;
use std::ffi::{c_char, c_int, c_void};
use std::mem::MaybeUninit;

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
/// the response: a download of any size in the memory of one piece (whatever the connection
/// delivers at once: from a few KiB to a few hundred KiB on loopback).
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

/// What a read callback returns to fail the request (CLOUDAUTH_ERR_CANCELLED).
pub const CLOUDAUTH_READ_FAILED: usize = usize::MAX;

/// Copies up to `cap` bytes of the request body, from where the last call stopped, into `buf`;
/// returns how many (0 at the end), or CLOUDAUTH_READ_FAILED to fail the request. Called on the
/// thread that made the request, during the call only; the time it takes counts in
/// `timeout_ms`.
pub type cloudauth_read_fn =
    Option<unsafe extern "C" fn(user_data: *mut c_void, buf: *mut u8, cap: usize) -> usize>;

/// Puts the body back at its start, for a resend; returns 0 when done. NULL, or non-zero,
/// means the body cannot be sent again (the answer or failure that would have caused the
/// resend is then the caller's).
pub type cloudauth_rewind_fn = Option<unsafe extern "C" fn(user_data: *mut c_void) -> c_int>;

/// Where a request body comes from. `read` is required; `rewind` may be NULL. `length` is the
/// body's size in bytes (sent as Content-Length; a source that ends before it or gives more
/// fails the request with CLOUDAUTH_ERR_INVALID_ARGUMENT, before the last byte is sent), or -1:
/// unknown, sent chunked.
#[repr(C)]
pub struct cloudauth_body_source {
    pub read: cloudauth_read_fn,
    pub rewind: cloudauth_rewind_fn,
    pub user_data: *mut c_void,
    pub length: i64,
}

/// `cloudauth_session_request`, with the request body read from `body` while the request is
/// written, and the response streamed to `sink` (as for `cloudauth_session_request_stream`)
/// or, when `sink` is NULL, held whole in `*out`.
///
/// - `body`: NULL for no body. A resend (a 401 to a hop that carried the token, a 307 or 308,
///   a connection that failed under the request, a DPoP nonce challenge) first calls `rewind`
///   when any byte was read; without `rewind`, or when it returns non-zero, nothing is sent
///   again: the 401 or the 3xx is the answer, or the connection's failure the error. A 301 or
///   302 to a POST, or a 303, makes the next hop a GET without a body.
/// - `timeout_ms` bounds the whole exchange, `read` included; `max_response_bytes` caps the
///   response body.
///
/// Errors: those of `cloudauth_session_request_stream`; CLOUDAUTH_ERR_CANCELLED when `read`
/// returned CLOUDAUTH_READ_FAILED; CLOUDAUTH_ERR_INVALID_ARGUMENT when the source gave fewer or
/// more bytes than `length`, or `length` is below -1.
///
/// # Safety
/// As for `cloudauth_session_request_stream`; `body` is NULL or points to a source whose
/// callbacks may be called with its `user_data` until this call returns, never after.
#[no_mangle]
pub unsafe extern "C" fn cloudauth_session_request_stream_body(
    s: *mut cloudauth_session,
    method: *const c_char,
    url: *const c_char,
    headers: *const *const c_char,
    n_headers: usize,
    body: *const cloudauth_body_source,
    sink: *const cloudauth_body_sink,
    out: *mut *mut cloudauth_response,
) -> cloudauth_result {
    boundary(|| {
        let s = arg_ref(s, "session")?;
        let method = super::arg_str(method, "method")?;
        let url = super::arg_str(url, "url")?;
        let headers = header_lines(headers, n_headers)?;
        let mut to = match sink.as_ref() {
            None => None,
            Some(sink) => Some(CSink {
                head: sink.head,
                write: sink
                    .write
                    .ok_or_else(|| Error::invalid("sink: write is NULL"))?,
                user_data: sink.user_data,
            }),
        };
        let out = arg_out(out, "out")?;
        let sink = to.as_mut().map(|s| s as &mut dyn BodySink);
        let response = match body.as_ref() {
            None => match sink {
                Some(sink) => s.inner.request_stream(method, url, headers, &[], sink)?,
                None => s.inner.request(method, url, headers, &[])?,
            },
            Some(source) => {
                let source = CSource::new(source)?;
                s.inner
                    .request_source(method, url, headers, Box::new(source), sink)?
            }
        };
        *out = Box::into_raw(Box::new(cloudauth_response::new(response)));
        Ok(())
    })
}

struct CSource {
    read: unsafe extern "C" fn(*mut c_void, *mut u8, usize) -> usize,
    rewind: cloudauth_rewind_fn,
    user_data: *mut c_void,
    length: Option<u64>,
}

// As for `CSink`: called only inside the call that lent it, on the caller's thread; the
// session lets go of it before the call returns.
unsafe impl Send for CSource {}

impl CSource {
    fn new(source: &cloudauth_body_source) -> Result<CSource> {
        let read = source
            .read
            .ok_or_else(|| Error::invalid("body: read is NULL"))?;
        let length = match source.length {
            -1 => None,
            n if n >= 0 => Some(n as u64),
            n => {
                return Err(Error::invalid(format!(
                    "body: length is {n}; give the size in bytes, or -1 when unknown"
                )))
            }
        };
        Ok(CSource {
            read,
            rewind: source.rewind,
            user_data: source.user_data,
            length,
        })
    }
}

impl BodySource for CSource {
    fn length(&self) -> Option<u64> {
        self.length
    }

    fn read(&mut self, buf: &mut [MaybeUninit<u8>]) -> Result<usize> {
        // The callback only writes (its contract): no byte of `buf` is read before it does.
        match unsafe { (self.read)(self.user_data, buf.as_mut_ptr().cast(), buf.len()) } {
            CLOUDAUTH_READ_FAILED => Err(Error::new(
                Code::CLOUDAUTH_ERR_CANCELLED,
                "the read callback failed the request (it returned CLOUDAUTH_READ_FAILED)",
            )),
            n => Ok(n),
        }
    }

    fn rewind(&mut self) -> bool {
        self.rewind
            .is_some_and(|rewind| unsafe { rewind(self.user_data) } == 0)
    }
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
