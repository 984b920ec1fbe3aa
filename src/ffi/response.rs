use super::{arg_out, arg_ref, arg_str, boundary, boundary_value};
use crate::error::{cloudauth_result, Error};
use crate::http::request::Response;
use std::ffi::{c_char, CString};
use std::sync::OnceLock;

/// A complete HTTP response: status, headers and body, all in memory.
///
/// Thread-safety: immutable; may be read from several threads.
/// Ownership: returned by `cloudauth_session_request`, owned by the caller until
/// `cloudauth_response_free`. Pointers obtained from it are valid until then.
pub struct cloudauth_response {
    pub(super) inner: Response,
    /// The headers as C strings, made on the first header call (most callers read only the
    /// status and body) and kept until the response is freed: the pointers handed out point
    /// into them.
    c_headers: OnceLock<Vec<(CString, CString)>>,
}

impl cloudauth_response {
    pub(super) fn new(inner: Response) -> cloudauth_response {
        cloudauth_response {
            inner,
            c_headers: OnceLock::new(),
        }
    }

    fn c_headers(&self) -> &[(CString, CString)] {
        self.c_headers.get_or_init(|| {
            self.inner
                .headers
                .iter()
                // Header values cannot hold NUL (hyper refuses them), so this never drops one.
                .filter_map(|(n, v)| {
                    Some((
                        CString::new(n.as_str()).ok()?,
                        CString::new(v.as_bytes()).ok()?,
                    ))
                })
                .collect()
        })
    }
}

/// The HTTP status code, e.g. 200 or 404. 0 for NULL (with a message in `cloudauth_last_error`).
///
/// # Safety
/// `r` is NULL or a live response.
#[no_mangle]
pub unsafe extern "C" fn cloudauth_response_status(r: *const cloudauth_response) -> u16 {
    boundary_value(0, || Ok(arg_ref(r, "response")?.inner.status))
}

/// The body and, in `*len` (if `len` is not NULL), its length in bytes. The body may contain
/// NUL bytes and is not NUL-terminated. Owned by the response: valid until
/// `cloudauth_response_free`. NULL with `*len` = 0 (and a message) for a NULL response.
///
/// # Safety
/// `r` is NULL or a live response; `len` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn cloudauth_response_body(
    r: *const cloudauth_response,
    len: *mut usize,
) -> *const u8 {
    boundary_value(std::ptr::null(), || {
        let body = arg_ref(r, "response").map(|r| r.inner.body.as_slice());
        if let Some(len) = len.as_mut() {
            *len = body.as_ref().map_or(0, |b| b.len());
        }
        Ok(body?.as_ptr())
    })
}

/// The first value of header `name`, matched case-insensitively, as a NUL-terminated string
/// owned by the response (valid until `cloudauth_response_free`). NULL when the header is
/// absent (an answer: the last error is ""), or when `r` or `name` is NULL or `name` is not
/// UTF-8 (a failure, with a message).
///
/// # Safety
/// `r` is NULL or a live response; `name` is NULL or a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn cloudauth_response_header(
    r: *const cloudauth_response,
    name: *const c_char,
) -> *const c_char {
    boundary_value(std::ptr::null(), || {
        let r = arg_ref(r, "response")?;
        let name = arg_str(name, "name")?;
        Ok(r.c_headers()
            .iter()
            .find(|(n, _)| n.to_bytes().eq_ignore_ascii_case(name.as_bytes()))
            .map_or(std::ptr::null(), |(_, v)| v.as_ptr()))
    })
}

/// The number of headers in the response (repeated headers count once per value). 0 for
/// NULL, with a message.
///
/// # Safety
/// `r` is NULL or a live response.
#[no_mangle]
pub unsafe extern "C" fn cloudauth_response_header_count(r: *const cloudauth_response) -> usize {
    boundary_value(0, || Ok(arg_ref(r, "response")?.c_headers().len()))
}

/// The header at `index` (0-based, in the order received): its lower-case name in `*name` and
/// its value in `*value`, both NUL-terminated and owned by the response (valid until
/// `cloudauth_response_free`). For iterating all headers; see
/// `cloudauth_response_header_count`. An index out of range is CLOUDAUTH_ERR_INVALID_ARGUMENT,
/// and the outputs are untouched on failure.
///
/// # Safety
/// `r` is NULL or a live response; `name` and `value` are NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn cloudauth_response_header_at(
    r: *const cloudauth_response,
    index: usize,
    name: *mut *const c_char,
    value: *mut *const c_char,
) -> cloudauth_result {
    boundary(|| {
        let r = arg_ref(r, "response")?;
        let name = arg_out(name, "name")?;
        let value = arg_out(value, "value")?;
        let headers = r.c_headers();
        let (n, v) = headers.get(index).ok_or_else(|| {
            Error::invalid(format!(
                "header index {index} is out of range (the response has {})",
                headers.len()
            ))
        })?;
        *name = n.as_ptr();
        *value = v.as_ptr();
        Ok(())
    })
}

/// Frees a response and everything it owns. NULL is a no-op.
///
/// # Safety
/// `r` is NULL or a response from `cloudauth_session_request` that has not been freed.
#[no_mangle]
pub unsafe extern "C" fn cloudauth_response_free(r: *mut cloudauth_response) {
    super::free_box(r)
}
