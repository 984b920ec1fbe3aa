use super::request_args::request_args;
use super::{
    arg_out, arg_ref, arg_str, boundary, boundary_fast, boundary_value, cloudauth_config,
    cloudauth_response, free_box,
};
use crate::error::{cloudauth_result, Code, Error, Result};
use crate::session::Session;
use std::ffi::c_char;

/// A session: credentials, the cached token and a connection pool.
///
/// Thread-safety: thread-safe. Share one session across all threads; concurrent callers
/// cause at most one token request at a time.
/// Ownership: created by `cloudauth_session_new`, freed by `cloudauth_session_free` once no
/// other thread is using it.
pub struct cloudauth_session {
    pub(super) inner: Session,
}

/// Creates a session from a configuration. `cfg` is copied: the caller still owns and frees it.
/// client_id and client_secret must be set. No network traffic happens here; the first
/// token is fetched on first use.
///
/// On success writes a new session to `*out`, which the caller frees with
/// `cloudauth_session_free`. On failure `*out` is left untouched. Errors:
/// CLOUDAUTH_ERR_INVALID_ARGUMENT (NULL, missing credentials, unreadable ca_file, bad proxy),
/// CLOUDAUTH_ERR_INSECURE_URL (token_url is plain http to a non-loopback host and
/// allow_insecure_http is not set).
///
/// # Safety
/// `cfg` is NULL or a live config; `out` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn cloudauth_session_new(
    cfg: *const cloudauth_config,
    out: *mut *mut cloudauth_session,
) -> cloudauth_result {
    boundary(|| {
        let cfg = arg_ref(cfg, "cfg")?;
        let out = arg_out(out, "out")?;
        let session = Session::new(&cfg.inner)?;
        *out = Box::into_raw(Box::new(cloudauth_session { inner: session }));
        Ok(())
    })
}

/// Copies the current valid access token into `buf` as a NUL-terminated string, fetching or
/// refreshing it first when needed (a cached token costs no network traffic and no lock).
///
/// `*token_len` receives the token's length without the NUL. If `buf` is NULL or `buf_len`
/// is not at least that length + 1, returns CLOUDAUTH_ERR_BUFFER_TOO_SMALL with `*token_len`
/// set: call again with a larger buffer. `token_len` must not be NULL. On any failure the
/// contents of `buf` are unspecified: the lock-free read copies first and checks after, so a
/// refresh that lands during the copy (and brings a token that no longer fits) leaves bytes of
/// the previous token there.
///
/// The token is a credential: do not log it. Other errors are those of the token request:
/// CLOUDAUTH_ERR_NETWORK, _TIMEOUT, _AUTH_REJECTED, _TOKEN_ENDPOINT, _BAD_TOKEN_RESPONSE,
/// _TOO_LARGE.
///
/// # Safety
/// `s` is NULL or a live session; `buf` is NULL or has `buf_len` writable bytes; `token_len`
/// is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn cloudauth_session_token(
    s: *mut cloudauth_session,
    buf: *mut c_char,
    buf_len: usize,
    token_len: *mut usize,
) -> cloudauth_result {
    // The common case on its own path: valid arguments and a fresh cached token that fits,
    // so no `Result`, no message and no generic boundary work. Anything else takes the full
    // path, which also explains the failure.
    boundary_fast(
        || read_fresh(s, buf, buf_len, token_len),
        || session_token_full(s, buf, buf_len, token_len),
    )
}

/// # Safety
/// As for `cloudauth_session_token`.
#[inline(always)]
unsafe fn read_fresh(
    s: *mut cloudauth_session,
    buf: *mut c_char,
    buf_len: usize,
    token_len: *mut usize,
) -> bool {
    let Some(s) = s.as_ref() else {
        return false;
    };
    if token_len.is_null() || buf.is_null() {
        return false;
    }
    match s.inner.copy_fresh_token(buf.cast::<u8>(), buf_len) {
        Some(len) => {
            *token_len = len;
            true
        }
        None => false,
    }
}

/// `cloudauth_session_token` when the fast read did not do: fetches, waits, explains.
///
/// # Safety
/// As for `cloudauth_session_token`.
#[inline(never)]
unsafe fn session_token_full(
    s: *mut cloudauth_session,
    buf: *mut c_char,
    buf_len: usize,
    token_len: *mut usize,
) -> Result<()> {
    let s = arg_ref(s, "session")?;
    let token_len = arg_out(token_len, "token_len")?;
    s.inner
        .with_token(|token| copy_token(token, buf, buf_len, token_len))?
}

/// Like `cloudauth_session_token`, but never blocks: copies the token if one is usable now.
/// Otherwise returns CLOUDAUTH_ERR_WOULD_BLOCK and starts a fetch on a library thread, so a
/// later call finds the token (or the fetch's error, through `cloudauth_session_token`). A token
/// inside its refresh window is usable: its refresh starts in the background. Buffer rules as
/// for `cloudauth_session_token`.
///
/// # Safety
/// As for `cloudauth_session_token`.
#[no_mangle]
pub unsafe extern "C" fn cloudauth_session_token_cached(
    s: *mut cloudauth_session,
    buf: *mut c_char,
    buf_len: usize,
    token_len: *mut usize,
) -> cloudauth_result {
    boundary(|| {
        let s = arg_ref(s, "session")?;
        let token_len = arg_out(token_len, "token_len")?;
        s.inner
            .token_cached(|token| copy_token(token, buf, buf_len, token_len))?
    })
}

/// The buffer protocol of the token calls: `*token_len` always, the token with its NUL only
/// when it fits.
///
/// # Safety
/// `buf` is NULL or has `buf_len` writable bytes.
unsafe fn copy_token(
    token: &str,
    buf: *mut c_char,
    buf_len: usize,
    token_len: &mut usize,
) -> Result<()> {
    let len = token.len();
    *token_len = len;
    if buf.is_null() || buf_len <= len {
        return Err(Error::new(
            Code::CLOUDAUTH_ERR_BUFFER_TOO_SMALL,
            format!(
                "the token needs a buffer of {} bytes (length {len} plus the NUL); got {buf_len}",
                len + 1
            ),
        ));
    }
    std::ptr::copy_nonoverlapping(token.as_ptr(), buf.cast::<u8>(), len);
    *buf.add(len) = 0;
    Ok(())
}

/// Writes to `*seconds` how many whole seconds the current valid token has left before it
/// expires (from the token response's `expires_in`, on a monotonic clock), fetching a token
/// first if there is none. For display and monitoring: the session refreshes the token
/// `refresh_skew_s` before this reaches 0 by itself. `*seconds` is untouched on failure.
///
/// # Safety
/// `s` is NULL or a live session; `seconds` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn cloudauth_session_token_expires_in(
    s: *mut cloudauth_session,
    seconds: *mut u64,
) -> cloudauth_result {
    boundary(|| {
        let s = arg_ref(s, "session")?;
        let seconds = arg_out(seconds, "seconds")?;
        *seconds = s.inner.token_expires_in()?.as_secs();
        Ok(())
    })
}

/// Drops the cached token: the next call fetches a new one. Use it when you learn by other
/// means that the token was revoked. Thread-safe.
///
/// # Safety
/// `s` is NULL or a live session.
#[no_mangle]
pub unsafe extern "C" fn cloudauth_session_invalidate(
    s: *mut cloudauth_session,
) -> cloudauth_result {
    boundary(|| {
        arg_ref(s, "session")?.inner.invalidate();
        Ok(())
    })
}

/// Drops the cached token only if it is still `token`, the one a server just rejected with a
/// 401. A token another thread fetched meanwhile survives, so many threads reacting to the
/// same 401 cause one new token request, not one each. For code that sends its own requests
/// with the token (an HTTP client's auth hook); `cloudauth_session_request` does this itself.
/// CLOUDAUTH_OK whether or not the token was still current. `token` is not retained.
///
/// # Safety
/// `s` is NULL or a live session; `token` is NULL or a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn cloudauth_session_invalidate_token(
    s: *mut cloudauth_session,
    token: *const c_char,
) -> cloudauth_result {
    boundary(|| {
        let s = arg_ref(s, "session")?;
        s.inner.invalidate_token(arg_str(token, "token")?);
        Ok(())
    })
}

/// Whether a request to `url` may carry this session's token, by the same rule
/// `cloudauth_session_request` applies: an absolute http(s) URL with a host (or a path joined
/// to `base_url`), over https, or plain http to a loopback host, or anywhere with
/// `allow_insecure_http`. For bindings that attach the token to requests sent by another HTTP
/// client, so that they need no copy of the rule. Nothing is sent.
/// CLOUDAUTH_OK, CLOUDAUTH_ERR_INSECURE_URL or CLOUDAUTH_ERR_INVALID_ARGUMENT.
///
/// # Safety
/// `s` is NULL or a live session; `url` is NULL or a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn cloudauth_session_check_url(
    s: *const cloudauth_session,
    url: *const c_char,
) -> cloudauth_result {
    boundary(|| {
        let s = arg_ref(s, "session")?;
        s.inner.check_url(arg_str(url, "url")?)
    })
}

/// The origin this session's token is meant for: "scheme://host[:port]" of `base_url` (the
/// default one when the key was not set), e.g. "https://api.aspose.cloud" or
/// "http://127.0.0.1:8080": scheme and host in lower case, the host in its ASCII (IDNA) form,
/// an IPv6 host in brackets, the port only when it is not the scheme's default. For bindings
/// that attach the token to requests sent by another HTTP client: they add it only to requests
/// whose origin, serialized the same way, equals this one, on every redirect hop.
///
/// The string is owned by the session and stays valid until `cloudauth_session_free`. On
/// success the last error is "". NULL with the last error set when `s` is NULL.
///
/// # Safety
/// `s` is NULL or a live session.
#[no_mangle]
pub unsafe extern "C" fn cloudauth_session_origin(s: *const cloudauth_session) -> *const c_char {
    boundary_value(std::ptr::null(), || {
        Ok(arg_ref(s, "session")?.inner.origin().as_ptr())
    })
}

/// Sends an authorized HTTP request and reads the whole response.
///
/// - `method`: "GET", "POST", ...
/// - `url`: an absolute http(s) URL, or a path joined to the `base_url` key.
/// - `headers`: `n_headers` strings "Name: value"; NULL when `n_headers` is 0. CR or LF in a
///   header, a line without a colon, or an Authorization header (the session sets it) is
///   CLOUDAUTH_ERR_INVALID_ARGUMENT.
/// - `body`: `body_len` bytes, binary-safe; NULL when `body_len` is 0.
///
/// Every argument is copied; the caller keeps ownership. The session adds
/// `Authorization: Bearer <token>`. On a 401 it drops that token (if it is still the current
/// one), fetches a new one and sends the request once more. Redirects are followed (at most
/// 10); one to another host or port never carries the token. An absolute `url` to another
/// origin does carry it, by design: the caller chose it (docs/identity-providers.md lists
/// which requests carry the token, a DPoP proof or the client certificate).
///
/// Any HTTP status, 404 or 500 included, is CLOUDAUTH_OK with a response in `*out`, which the
/// caller frees with `cloudauth_response_free`. On failure `*out` is untouched. Errors:
/// CLOUDAUTH_ERR_INVALID_ARGUMENT, _INSECURE_URL (plain http to a non-loopback host), _NETWORK,
/// _TIMEOUT, _TOO_LARGE (body over `max_response_bytes`), and the token errors.
///
/// # Safety
/// `s` is NULL or a live session; strings are NULL or NUL-terminated; `headers` is NULL or
/// has `n_headers` entries; `body` is NULL or has `body_len` readable bytes; `out` is NULL or
/// writable.
#[no_mangle]
pub unsafe extern "C" fn cloudauth_session_request(
    s: *mut cloudauth_session,
    method: *const c_char,
    url: *const c_char,
    headers: *const *const c_char,
    n_headers: usize,
    body: *const u8,
    body_len: usize,
    out: *mut *mut cloudauth_response,
) -> cloudauth_result {
    boundary(|| {
        let s = arg_ref(s, "session")?;
        let a = request_args(method, url, headers, n_headers, body, body_len)?;
        let out = arg_out(out, "out")?;
        let response = s.inner.request(a.method, a.url, a.headers, a.body)?;
        *out = Box::into_raw(Box::new(cloudauth_response::new(response)));
        Ok(())
    })
}

/// Rotates the credentials of a live session: later token requests use `client_id` and
/// `client_secret` (both copied; the old secret is zeroed once no fetch in flight uses it). A
/// fetch in flight finishes with the old ones; the current token stays until it expires or is
/// invalidated (call `cloudauth_session_invalidate` to switch at once). The next fetch reports
/// the reason "credentials_changed". Replaces a `client_secret_file` too.
///
/// Errors: CLOUDAUTH_ERR_INVALID_ARGUMENT for NULL, invalid UTF-8 or an empty value, and for
/// a session with auth_method tls_client_auth or self_signed_tls_client_auth, which has no
/// secret (replace its client_cert_file and client_key_file to rotate).
///
/// # Safety
/// `s` is NULL or a live session; the strings are NULL or NUL-terminated.
#[no_mangle]
pub unsafe extern "C" fn cloudauth_session_set_credentials(
    s: *mut cloudauth_session,
    client_id: *const c_char,
    client_secret: *const c_char,
) -> cloudauth_result {
    boundary(|| {
        let s = arg_ref(s, "session")?;
        let id = arg_str(client_id, "client_id")?;
        let secret = arg_str(client_secret, "client_secret")?;
        s.inner.set_credentials(id, secret)
    })
}

/// A session's counters, for dashboards and tests. Fields are only ever appended: pass
/// `sizeof(cloudauth_stats)` as your header knows it, and an older caller gets the prefix it
/// knows. Reading them takes no lock and sends nothing.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct cloudauth_stats {
    /// HTTP requests sent to the token endpoint, retries included.
    pub token_requests: u64,
    /// Token fetches that ended in an error, after retries.
    pub token_failures: u64,
    /// Successful refreshes done off the callers' threads (background and eager modes).
    pub background_refreshes: u64,
    /// Requests sent for cloudauth_session_request(_async), resends included.
    pub api_requests: u64,
    /// API requests resent after a 401.
    pub unauthorized_resends: u64,
    /// Tokens taken from the file or Redis cache instead of the token endpoint.
    pub shared_cache_hits: u64,
    /// File or Redis cache operations that failed (the call went on without the cache).
    pub shared_cache_errors: u64,
    /// The current token's remaining life in milliseconds; -1 when there is none.
    pub token_expires_in_ms: i64,
    /// Requests (token or API) sent once more on a new connection because a kept-alive one
    /// failed under them before any answer came; also counted in token_requests or
    /// api_requests.
    pub connection_resends: u64,
}

/// Writes the session's counters to `*out`: the first `out_size` bytes of a
/// `cloudauth_stats` (at most its full size). Errors: CLOUDAUTH_ERR_INVALID_ARGUMENT for NULL
/// or an `out_size` smaller than one field (8 bytes).
///
/// # Safety
/// `s` is NULL or a live session; `out` is NULL or has `out_size` writable bytes.
#[no_mangle]
pub unsafe extern "C" fn cloudauth_session_stats(
    s: *const cloudauth_session,
    out: *mut cloudauth_stats,
    out_size: usize,
) -> cloudauth_result {
    boundary(|| {
        let s = arg_ref(s, "session")?;
        if out.is_null() {
            return Err(Error::invalid("out is NULL"));
        }
        if out_size < 8 {
            return Err(Error::invalid(format!(
                "out_size is {out_size}; pass sizeof(cloudauth_stats)"
            )));
        }
        let st = s.inner.stats();
        let full = cloudauth_stats {
            token_requests: st.token_requests,
            token_failures: st.token_failures,
            background_refreshes: st.background_refreshes,
            api_requests: st.api_requests,
            unauthorized_resends: st.unauthorized_resends,
            shared_cache_hits: st.shared_cache_hits,
            shared_cache_errors: st.shared_cache_errors,
            token_expires_in_ms: st.token_expires_in_ms,
            connection_resends: st.connection_resends,
        };
        let n = out_size.min(std::mem::size_of::<cloudauth_stats>());
        std::ptr::copy_nonoverlapping(
            (&full as *const cloudauth_stats).cast::<u8>(),
            out.cast::<u8>(),
            n,
        );
        Ok(())
    })
}

/// Frees a session: its token is forgotten and its connections closed. NULL is a no-op.
/// No other thread may be using the session.
///
/// # Safety
/// `s` is NULL or a session from `cloudauth_session_new` that has not been freed.
#[no_mangle]
pub unsafe extern "C" fn cloudauth_session_free(s: *mut cloudauth_session) {
    free_box(s)
}
