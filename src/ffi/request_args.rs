//! The arguments of a request (`method`, `url`, `headers`, `body`) as every request function of
//! the ABI takes them, checked and borrowed from C: shared by the blocking, async and queued
//! calls, so it sits below all three.

use super::{arg_bytes, arg_str};
use crate::error::{Error, Result};
use std::ffi::c_char;

/// The arguments of a request, checked and borrowed from C.
pub(super) struct RequestArgs<'a> {
    pub(super) method: &'a str,
    pub(super) url: &'a str,
    pub(super) headers: Vec<&'a str>,
    pub(super) body: &'a [u8],
}

/// # Safety
/// As for `cloudauth_session_request`.
pub(super) unsafe fn request_args<'a>(
    method: *const c_char,
    url: *const c_char,
    headers: *const *const c_char,
    n_headers: usize,
    body: *const u8,
    body_len: usize,
) -> Result<RequestArgs<'a>> {
    Ok(RequestArgs {
        method: arg_str(method, "method")?,
        url: arg_str(url, "url")?,
        headers: header_lines(headers, n_headers)?,
        body: arg_bytes(body, body_len, "body")?,
    })
}

/// The `headers` argument as strings.
///
/// # Safety
/// `p` is NULL (allowed only when `n` is 0) or points to `n` NUL-terminated strings.
pub(super) unsafe fn header_lines<'a>(p: *const *const c_char, n: usize) -> Result<Vec<&'a str>> {
    arg_bytes_of(p, n)?
        .iter()
        .enumerate()
        .map(|(i, p)| arg_str(*p, &format!("headers[{i}]")))
        .collect()
}

/// # Safety
/// `p` is NULL (allowed only when `n` is 0) or points to `n` pointers.
unsafe fn arg_bytes_of<'a>(p: *const *const c_char, n: usize) -> Result<&'a [*const c_char]> {
    match (p.is_null(), n) {
        (true, 0) => Ok(&[]),
        (true, _) => Err(Error::invalid(format!(
            "headers is NULL but n_headers is {n}"
        ))),
        (false, _) => Ok(std::slice::from_raw_parts(p, n)),
    }
}
