use super::{boundary_keep, LAST_ERROR};
use crate::error::Code;
use std::ffi::{c_char, c_int};

const VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), "\0");

/// The library version, e.g. "0.1.0". Static storage: never free it.
#[no_mangle]
pub extern "C" fn cloudauth_version() -> *const c_char {
    boundary_keep(EMPTY.as_ptr().cast(), || VERSION.as_ptr().cast())
}

const EMPTY: &str = "\0";

/// A `cloudauth_result` as C passes it: any int, so a value that is not a code is safe to pass
/// (a Rust enum parameter holding one would be undefined behaviour). cbindgen.toml renames it
/// to `cloudauth_result` in the header.
#[repr(transparent)]
pub struct ResultArg(c_int);

/// The name of a result code, e.g. "CLOUDAUTH_ERR_TIMEOUT", or "CLOUDAUTH_UNKNOWN_RESULT" for a
/// value that is not a code. Static storage: never free it.
#[no_mangle]
pub extern "C" fn cloudauth_result_name(r: ResultArg) -> *const c_char {
    boundary_keep(EMPTY.as_ptr().cast(), || result_name(r.0))
}

fn result_name(result: c_int) -> *const c_char {
    const CODES: [Code; 13] = [
        Code::CLOUDAUTH_OK,
        Code::CLOUDAUTH_ERR_INVALID_ARGUMENT,
        Code::CLOUDAUTH_ERR_BUFFER_TOO_SMALL,
        Code::CLOUDAUTH_ERR_INSECURE_URL,
        Code::CLOUDAUTH_ERR_NETWORK,
        Code::CLOUDAUTH_ERR_TIMEOUT,
        Code::CLOUDAUTH_ERR_AUTH_REJECTED,
        Code::CLOUDAUTH_ERR_TOKEN_ENDPOINT,
        Code::CLOUDAUTH_ERR_BAD_TOKEN_RESPONSE,
        Code::CLOUDAUTH_ERR_TOO_LARGE,
        Code::CLOUDAUTH_ERR_INTERNAL,
        Code::CLOUDAUTH_ERR_CANCELLED,
        Code::CLOUDAUTH_ERR_WOULD_BLOCK,
    ];
    let name: &'static str = match CODES.iter().find(|c| **c as c_int == result) {
        Some(code) => code.c_name(),
        None => "CLOUDAUTH_UNKNOWN_RESULT\0",
    };
    name.as_ptr().cast()
}

/// The message of the last failed call on this thread, one line, or "" if the last call
/// succeeded. It says which step failed and why, and never contains a secret or a token.
/// Every cloudauth call sets or empties it, except those that cannot fail: this one,
/// `cloudauth_version`, `cloudauth_result_name` and the `*_free` functions leave it as it
/// was, so a caller may free what failed before reading the message. A NULL argument is a
/// failure with a message also where the function's result for NULL is a plain value (0,
/// -1, NULL). The pointer is owned by the library and stays valid until the next cloudauth
/// call on this thread; copy the text if you need it longer. Never NULL.
#[no_mangle]
pub extern "C" fn cloudauth_last_error() -> *const c_char {
    boundary_keep(EMPTY.as_ptr().cast(), || {
        // `try_with`: "" (not a panic) when called while this thread's locals are destroyed.
        LAST_ERROR
            .try_with(|e| e.0.try_borrow().map(|m| m.as_ptr()).ok())
            .ok()
            .flatten()
            .unwrap_or(EMPTY.as_ptr().cast())
    })
}
