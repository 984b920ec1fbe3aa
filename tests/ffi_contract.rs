//! The C ABI's contract, function by function, for every function include/cloudauth.h
//! declares (the header is parsed, so a new export without a case here fails the test):
//! - NULL arguments give the documented result and a message naming the argument;
//! - after a success `cloudauth_last_error()` is "" even when the previous call failed (the
//!   functions that cannot fail — `*_free`, `cloudauth_last_error`, `cloudauth_version`,
//!   `cloudauth_result_name` — leave it as it was, as the header says);
//! - a panic inside never crosses into C: with one injected at the boundary (debug builds,
//!   `cloudauth::ffi::testing`) each function returns its failure value and the internal-error
//!   message, and the test sees that the function entered the boundary at all.
//!
//! The calls go through the real exports against the stand-in on 127.0.0.1.

#[path = "support/common/mod.rs"]
mod common;

use cloudauth::ffi::testing::{panic_in_next_boundary, panic_still_armed};
use cloudauth::ffi::*;
use cloudauth::Code;
use common::StandIn;
use std::collections::BTreeSet;
use std::ffi::{c_char, c_void, CStr, CString};
use std::ptr::{null, null_mut};
use std::sync::atomic::{AtomicI32, Ordering};
use std::time::{Duration, Instant};

const OK: Code = Code::CLOUDAUTH_OK;
const INVALID: Code = Code::CLOUDAUTH_ERR_INVALID_ARGUMENT;
const INTERNAL: Code = Code::CLOUDAUTH_ERR_INTERNAL;

/// The functions the header declares: identifiers followed by `(`, outside comments, that are
/// not function-pointer typedefs (`(*name)(`).
fn header_functions() -> BTreeSet<String> {
    let header =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/include/cloudauth.h"))
            .unwrap();
    let mut code = String::new();
    let mut rest = header.as_str();
    while let Some(i) = rest.find("/*") {
        code.push_str(&rest[..i]);
        rest = &rest[i + rest[i..].find("*/").unwrap() + 2..];
    }
    code.push_str(rest);
    let code: String = code
        .lines()
        .map(|l| l.split("//").next().unwrap())
        .collect::<Vec<_>>()
        .join("\n");
    let bytes = code.as_bytes();
    let mut names = BTreeSet::new();
    for (i, _) in code.match_indices("cloudauth_") {
        if i > 0 && (bytes[i - 1].is_ascii_alphanumeric() || bytes[i - 1] == b'_') {
            continue;
        }
        let end = i + code[i..]
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap();
        let typedef = i >= 2 && &bytes[i - 2..i] == b"(*";
        if bytes.get(end) == Some(&b'(') && !typedef {
            names.insert(code[i..end].to_owned());
        }
    }
    names
}

fn last_error() -> String {
    let p = cloudauth_last_error();
    assert!(!p.is_null(), "cloudauth_last_error returned NULL");
    unsafe { CStr::from_ptr(p) }.to_str().unwrap().to_owned()
}

/// Leaves a message in the last error, so that a success has one to clear.
fn fail_first() {
    let rc = unsafe { cloudauth_config_set(null_mut(), null(), null()) };
    assert_eq!(rc, INVALID);
    assert!(!last_error().is_empty());
}

/// After a NULL argument: a one-line message that names what was NULL.
fn null_message(f: &str, arg: &str) {
    let m = last_error();
    assert!(
        m.contains(arg) && m.contains("NULL"),
        "{f}: message after NULL {arg}: {m:?}"
    );
}

fn cleared(f: &str) {
    assert_eq!(last_error(), "", "{f}: the last error after a success");
}

/// Runs `call` with a panic injected at the boundary: the function must have entered the
/// boundary and reported the internal error.
fn with_panic<T>(f: &str, call: impl FnOnce() -> T) -> T {
    panic_in_next_boundary();
    let v = call();
    assert!(!panic_still_armed(), "{f} did not run inside the boundary");
    let m = last_error();
    assert!(
        m.starts_with("internal error: a bug in cloudauth was caught at the API boundary"),
        "{f}: message after a panic: {m:?}"
    );
    v
}

fn cstr(s: &str) -> CString {
    CString::new(s).unwrap()
}

/// What the cases work on: a live config, session, response and queue, made through the ABI.
struct Fixture {
    _server: StandIn,
    cfg: *mut cloudauth_config,
    session: *mut cloudauth_session,
    response: *mut cloudauth_response,
    queue: *mut cloudauth_queue,
}

impl Fixture {
    fn new() -> Fixture {
        let server = StandIn::start();
        let cfg = cloudauth_config_new();
        for (k, v) in [
            ("client_id", common::CLIENT_ID.to_owned()),
            ("client_secret", common::SECRET.to_owned()),
            ("token_url", format!("{}/connect/token", server.url)),
            ("base_url", server.url.clone()),
        ] {
            let rc = unsafe { cloudauth_config_set(cfg, cstr(k).as_ptr(), cstr(&v).as_ptr()) };
            assert_eq!(rc, OK, "{k}");
        }
        let mut session = null_mut();
        assert_eq!(unsafe { cloudauth_session_new(cfg, &mut session) }, OK);
        let mut response = null_mut();
        let rc = unsafe {
            cloudauth_session_request(
                session,
                cstr("GET").as_ptr(),
                cstr("/headers").as_ptr(),
                null(),
                0,
                null(),
                0,
                &mut response,
            )
        };
        assert_eq!(rc, OK, "{}", last_error());
        let queue = cloudauth_queue_new();
        assert!(!queue.is_null());
        Fixture {
            _server: server,
            cfg,
            session,
            response,
            queue,
        }
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        unsafe {
            cloudauth_queue_free(self.queue);
            cloudauth_response_free(self.response);
            cloudauth_session_free(self.session);
            cloudauth_config_free(self.cfg);
        }
    }
}

static DONE: AtomicI32 = AtomicI32::new(-1);

unsafe extern "C" fn on_response(
    _: *mut c_void,
    rc: Code,
    r: *mut cloudauth_response,
    _: *const c_char,
) {
    cloudauth_response_free(r);
    DONE.store(rc as i32, Ordering::SeqCst);
}

unsafe extern "C" fn on_token(
    _: *mut c_void,
    rc: Code,
    _: *const c_char,
    _: usize,
    _: *const c_char,
) {
    DONE.store(rc as i32, Ordering::SeqCst);
}

unsafe extern "C" fn on_event(_: *mut c_void, _: *const cloudauth_event) {}

/// Waits for the async completion started just before.
fn completed() -> i32 {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let v = DONE.swap(-1, Ordering::SeqCst);
        if v != -1 {
            return v;
        }
        assert!(Instant::now() < deadline, "no completion");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Takes one completion from the fixture's queue and frees it.
unsafe fn drain(q: *mut cloudauth_queue) {
    let mut c = null_mut();
    assert_eq!(cloudauth_queue_wait(q, 20_000, &mut c), OK);
    cloudauth_response_free((*c).response);
    cloudauth_completion_free(c);
}

/// One function's contract; false for a name this test does not know.
unsafe fn check(f: &str, x: &Fixture) -> bool {
    let get = cstr("GET");
    let path = cstr("/headers");
    let key = cstr("scope");
    let value = cstr("a b");
    let mut buf = [0 as c_char; 4096];
    let mut len = 0usize;
    match f {
        "cloudauth_version" | "cloudauth_result_name" | "cloudauth_last_error" => {
            let call = || match f {
                "cloudauth_version" => cloudauth_version(),
                "cloudauth_result_name" => {
                    cloudauth_result_name(std::mem::transmute::<i32, ResultArg>(5))
                }
                _ => cloudauth_last_error(),
            };
            fail_first();
            let before = last_error();
            let p = call();
            assert!(
                !p.is_null() && !CStr::from_ptr(p).to_bytes().is_empty()
                    || f == "cloudauth_last_error"
            );
            assert_eq!(
                last_error(),
                before,
                "{f} must leave the last error as it was"
            );
            let p = with_panic(f, call);
            assert!(!p.is_null(), "{f}: NULL after a panic");
        }
        "cloudauth_stop_event_callbacks" => {
            with_panic(f, || cloudauth_stop_event_callbacks());
            // The real call comes last in `every_function_keeps_its_contract`.
        }
        "cloudauth_config_free"
        | "cloudauth_session_free"
        | "cloudauth_response_free"
        | "cloudauth_op_free"
        | "cloudauth_queue_free"
        | "cloudauth_completion_free" => {
            let free = |p: *mut c_void| match f {
                "cloudauth_config_free" => cloudauth_config_free(p.cast()),
                "cloudauth_session_free" => cloudauth_session_free(p.cast()),
                "cloudauth_response_free" => cloudauth_response_free(p.cast()),
                "cloudauth_op_free" => cloudauth_op_free(p.cast()),
                "cloudauth_queue_free" => cloudauth_queue_free(p.cast()),
                _ => cloudauth_completion_free(p.cast()),
            };
            fail_first();
            let before = last_error();
            free(null_mut());
            assert_eq!(
                last_error(),
                before,
                "{f}(NULL) must leave the last error as it was"
            );
            with_panic(f, || free(null_mut()));
            // A live object: made, then freed with an error pending.
            let live: *mut c_void = match f {
                "cloudauth_config_free" => cloudauth_config_new().cast(),
                "cloudauth_queue_free" => cloudauth_queue_new().cast(),
                "cloudauth_session_free" => {
                    let mut s = null_mut();
                    assert_eq!(cloudauth_session_new(x.cfg, &mut s), OK);
                    s.cast()
                }
                "cloudauth_response_free" => {
                    let mut r = null_mut();
                    let rc = cloudauth_session_request(
                        x.session,
                        get.as_ptr(),
                        path.as_ptr(),
                        null(),
                        0,
                        null(),
                        0,
                        &mut r,
                    );
                    assert_eq!(rc, OK);
                    r.cast()
                }
                "cloudauth_op_free" => {
                    let mut op = null_mut();
                    let rc = cloudauth_session_token_queued(x.session, x.queue, 1, &mut op);
                    assert_eq!(rc, OK);
                    drain(x.queue);
                    op.cast()
                }
                _ => {
                    assert_eq!(
                        cloudauth_session_token_queued(x.session, x.queue, 1, null_mut()),
                        OK
                    );
                    let mut c = null_mut();
                    assert_eq!(cloudauth_queue_wait(x.queue, 20_000, &mut c), OK);
                    c.cast()
                }
            };
            fail_first();
            let before = last_error();
            free(live);
            assert_eq!(
                last_error(),
                before,
                "{f} must leave the last error as it was"
            );
        }
        "cloudauth_config_new" | "cloudauth_queue_new" | "cloudauth_queue_new_caller_driven" => {
            let make = || -> *mut c_void {
                match f {
                    "cloudauth_config_new" => cloudauth_config_new().cast(),
                    "cloudauth_queue_new" => cloudauth_queue_new().cast(),
                    _ => cloudauth_queue_new_caller_driven().cast(),
                }
            };
            fail_first();
            let p = make();
            assert!(!p.is_null());
            cleared(f);
            match f {
                "cloudauth_config_new" => cloudauth_config_free(p.cast()),
                _ => cloudauth_queue_free(p.cast()),
            }
            assert!(with_panic(f, make).is_null(), "{f}: NULL after a panic");
        }
        "cloudauth_config_set" => {
            assert_eq!(
                cloudauth_config_set(null_mut(), key.as_ptr(), value.as_ptr()),
                INVALID
            );
            null_message(f, "cfg");
            assert_eq!(cloudauth_config_set(x.cfg, null(), value.as_ptr()), INVALID);
            null_message(f, "key");
            assert_eq!(cloudauth_config_set(x.cfg, key.as_ptr(), null()), INVALID);
            null_message(f, "value");
            fail_first();
            assert_eq!(
                cloudauth_config_set(x.cfg, key.as_ptr(), value.as_ptr()),
                OK
            );
            cleared(f);
            let rc = with_panic(f, || {
                cloudauth_config_set(x.cfg, key.as_ptr(), value.as_ptr())
            });
            assert_eq!(rc, INTERNAL);
        }
        "cloudauth_config_from_env" => {
            let prefix = cstr("CLOUDAUTH_CONTRACT_UNSET_");
            assert_eq!(
                cloudauth_config_from_env(null_mut(), prefix.as_ptr()),
                INVALID
            );
            null_message(f, "cfg");
            fail_first();
            assert_eq!(cloudauth_config_from_env(x.cfg, prefix.as_ptr()), OK);
            cleared(f);
            let rc = with_panic(f, || cloudauth_config_from_env(x.cfg, prefix.as_ptr()));
            assert_eq!(rc, INTERNAL);
        }
        "cloudauth_config_set_event_callback"
        | "cloudauth_config_set_event_callback_with_release" => {
            let set = |cfg: *mut cloudauth_config| match f {
                "cloudauth_config_set_event_callback" => {
                    cloudauth_config_set_event_callback(cfg, Some(on_event), null_mut())
                }
                _ => cloudauth_config_set_event_callback_with_release(
                    cfg,
                    Some(on_event),
                    null_mut(),
                    None,
                ),
            };
            assert_eq!(set(null_mut()), INVALID);
            null_message(f, "cfg");
            let cfg = cloudauth_config_new();
            fail_first();
            assert_eq!(set(cfg), OK);
            cleared(f);
            assert_eq!(with_panic(f, || set(cfg)), INTERNAL);
            cloudauth_config_free(cfg);
        }
        "cloudauth_config_set_event_queue" => {
            assert_eq!(
                cloudauth_config_set_event_queue(null_mut(), x.queue, 1),
                INVALID
            );
            null_message(f, "cfg");
            let cfg = cloudauth_config_new();
            fail_first();
            assert_eq!(cloudauth_config_set_event_queue(cfg, x.queue, 1), OK);
            cleared(f);
            assert_eq!(
                cloudauth_config_set_event_queue(cfg, null_mut(), 1),
                OK,
                "NULL queue removes it"
            );
            assert_eq!(
                with_panic(f, || cloudauth_config_set_event_queue(cfg, null_mut(), 1)),
                INTERNAL
            );
            cloudauth_config_free(cfg);
        }
        "cloudauth_session_new" => {
            let mut s = null_mut();
            assert_eq!(cloudauth_session_new(null(), &mut s), INVALID);
            null_message(f, "cfg");
            assert_eq!(cloudauth_session_new(x.cfg, null_mut()), INVALID);
            null_message(f, "out");
            assert!(s.is_null(), "{f}: *out touched on failure");
            fail_first();
            assert_eq!(cloudauth_session_new(x.cfg, &mut s), OK);
            cleared(f);
            cloudauth_session_free(s);
            assert_eq!(
                with_panic(f, || cloudauth_session_new(x.cfg, &mut s)),
                INTERNAL
            );
        }
        "cloudauth_session_token" | "cloudauth_session_token_cached" => {
            let token = |s, buf: *mut c_char, n, len: *mut usize| match f {
                "cloudauth_session_token" => cloudauth_session_token(s, buf, n, len),
                _ => cloudauth_session_token_cached(s, buf, n, len),
            };
            assert_eq!(
                token(null_mut(), buf.as_mut_ptr(), buf.len(), &mut len),
                INVALID
            );
            null_message(f, "session");
            assert_eq!(
                token(x.session, buf.as_mut_ptr(), buf.len(), null_mut()),
                INVALID
            );
            null_message(f, "token_len");
            let rc = token(x.session, null_mut(), 0, &mut len);
            assert_eq!(rc, Code::CLOUDAUTH_ERR_BUFFER_TOO_SMALL);
            assert!(
                len > 0 && last_error().contains("buffer"),
                "{f}: {}",
                last_error()
            );
            fail_first();
            assert_eq!(token(x.session, buf.as_mut_ptr(), buf.len(), &mut len), OK);
            cleared(f);
            let rc = with_panic(f, || {
                token(x.session, buf.as_mut_ptr(), buf.len(), &mut len)
            });
            assert_eq!(rc, INTERNAL);
        }
        "cloudauth_session_token_expires_in" => {
            let mut secs = 0u64;
            assert_eq!(
                cloudauth_session_token_expires_in(null_mut(), &mut secs),
                INVALID
            );
            null_message(f, "session");
            assert_eq!(
                cloudauth_session_token_expires_in(x.session, null_mut()),
                INVALID
            );
            null_message(f, "seconds");
            fail_first();
            assert_eq!(cloudauth_session_token_expires_in(x.session, &mut secs), OK);
            assert!(secs > 0);
            cleared(f);
            let rc = with_panic(f, || {
                cloudauth_session_token_expires_in(x.session, &mut secs)
            });
            assert_eq!(rc, INTERNAL);
        }
        "cloudauth_session_invalidate" => {
            assert_eq!(cloudauth_session_invalidate(null_mut()), INVALID);
            null_message(f, "session");
            fail_first();
            assert_eq!(cloudauth_session_invalidate(x.session), OK);
            cleared(f);
            assert_eq!(
                with_panic(f, || cloudauth_session_invalidate(x.session)),
                INTERNAL
            );
        }
        "cloudauth_session_invalidate_token" => {
            let t = cstr("not-the-token");
            assert_eq!(
                cloudauth_session_invalidate_token(null_mut(), t.as_ptr()),
                INVALID
            );
            null_message(f, "session");
            assert_eq!(
                cloudauth_session_invalidate_token(x.session, null()),
                INVALID
            );
            null_message(f, "token");
            fail_first();
            assert_eq!(
                cloudauth_session_invalidate_token(x.session, t.as_ptr()),
                OK
            );
            cleared(f);
            let rc = with_panic(f, || {
                cloudauth_session_invalidate_token(x.session, t.as_ptr())
            });
            assert_eq!(rc, INTERNAL);
        }
        "cloudauth_session_check_url" => {
            assert_eq!(cloudauth_session_check_url(null(), path.as_ptr()), INVALID);
            null_message(f, "session");
            assert_eq!(cloudauth_session_check_url(x.session, null()), INVALID);
            null_message(f, "url");
            fail_first();
            assert_eq!(cloudauth_session_check_url(x.session, path.as_ptr()), OK);
            cleared(f);
            assert_eq!(
                with_panic(f, || cloudauth_session_check_url(x.session, path.as_ptr())),
                INTERNAL
            );
        }
        "cloudauth_session_request" => {
            let mut r = null_mut();
            let req = |s, m: *const c_char, u: *const c_char, out| {
                cloudauth_session_request(s, m, u, null(), 0, null(), 0, out)
            };
            assert_eq!(
                req(null_mut(), get.as_ptr(), path.as_ptr(), &mut r),
                INVALID
            );
            null_message(f, "session");
            assert_eq!(req(x.session, null(), path.as_ptr(), &mut r), INVALID);
            null_message(f, "method");
            assert_eq!(req(x.session, get.as_ptr(), null(), &mut r), INVALID);
            null_message(f, "url");
            assert_eq!(
                req(x.session, get.as_ptr(), path.as_ptr(), null_mut()),
                INVALID
            );
            null_message(f, "out");
            let rc = cloudauth_session_request(
                x.session,
                get.as_ptr(),
                path.as_ptr(),
                null(),
                2,
                null(),
                0,
                &mut r,
            );
            assert_eq!(rc, INVALID);
            null_message(f, "headers");
            let rc = cloudauth_session_request(
                x.session,
                get.as_ptr(),
                path.as_ptr(),
                null(),
                0,
                null(),
                3,
                &mut r,
            );
            assert_eq!(rc, INVALID);
            null_message(f, "body");
            assert!(r.is_null(), "{f}: *out touched on failure");
            fail_first();
            assert_eq!(req(x.session, get.as_ptr(), path.as_ptr(), &mut r), OK);
            cleared(f);
            cloudauth_response_free(r);
            let rc = with_panic(f, || req(x.session, get.as_ptr(), path.as_ptr(), &mut r));
            assert_eq!(rc, INTERNAL);
        }
        "cloudauth_session_origin" => {
            assert!(cloudauth_session_origin(null_mut()).is_null());
            null_message(f, "session");
            fail_first();
            let o = cloudauth_session_origin(x.session);
            assert!(!o.is_null());
            assert!(CStr::from_ptr(o).to_str().unwrap().starts_with("http"));
            cleared(f);
            assert!(with_panic(f, || cloudauth_session_origin(x.session)).is_null());
        }
        "cloudauth_session_request_stream" => {
            unsafe extern "C" fn sink_write(_: *mut c_void, _: *const u8, _: usize) -> i32 {
                0
            }
            let sink = cloudauth_body_sink {
                head: None,
                write: Some(sink_write),
                user_data: null_mut(),
            };
            let no_write = cloudauth_body_sink {
                head: None,
                write: None,
                user_data: null_mut(),
            };
            let mut r = null_mut();
            let req =
                |s, m: *const c_char, u: *const c_char, k: *const cloudauth_body_sink, out| {
                    cloudauth_session_request_stream(s, m, u, null(), 0, null(), 0, k, out)
                };
            assert_eq!(
                req(null_mut(), get.as_ptr(), path.as_ptr(), &sink, &mut r),
                INVALID
            );
            null_message(f, "session");
            assert_eq!(
                req(x.session, null(), path.as_ptr(), &sink, &mut r),
                INVALID
            );
            null_message(f, "method");
            assert_eq!(req(x.session, get.as_ptr(), null(), &sink, &mut r), INVALID);
            null_message(f, "url");
            assert_eq!(
                req(x.session, get.as_ptr(), path.as_ptr(), null(), &mut r),
                INVALID
            );
            null_message(f, "sink");
            assert_eq!(
                req(x.session, get.as_ptr(), path.as_ptr(), &no_write, &mut r),
                INVALID
            );
            null_message(f, "write");
            assert_eq!(
                req(x.session, get.as_ptr(), path.as_ptr(), &sink, null_mut()),
                INVALID
            );
            null_message(f, "out");
            assert!(r.is_null(), "{f}: *out touched on failure");
            fail_first();
            assert_eq!(
                req(x.session, get.as_ptr(), path.as_ptr(), &sink, &mut r),
                OK
            );
            cleared(f);
            cloudauth_response_free(r);
            let rc = with_panic(f, || {
                req(x.session, get.as_ptr(), path.as_ptr(), &sink, &mut r)
            });
            assert_eq!(rc, INTERNAL);
        }
        "cloudauth_session_request_stream_body" => {
            unsafe extern "C" fn read_two(at: *mut c_void, buf: *mut u8, cap: usize) -> usize {
                let at = &mut *(at as *mut usize);
                let n = (2 - *at).min(cap);
                std::ptr::write_bytes(buf, b'x', n);
                *at += n;
                n
            }
            unsafe extern "C" fn sink_write(_: *mut c_void, _: *const u8, _: usize) -> i32 {
                0
            }
            let mut at = 0usize;
            let source = cloudauth_body_source {
                read: Some(read_two),
                rewind: None,
                user_data: &mut at as *mut usize as *mut c_void,
                length: 2,
            };
            let no_read = cloudauth_body_source {
                read: None,
                ..source
            };
            let no_write = cloudauth_body_sink {
                head: None,
                write: None,
                user_data: null_mut(),
            };
            let sink = cloudauth_body_sink {
                head: None,
                write: Some(sink_write),
                user_data: null_mut(),
            };
            let post = cstr("POST");
            let mut r = null_mut();
            let req = |s,
                       m: *const c_char,
                       u: *const c_char,
                       b: *const cloudauth_body_source,
                       k: *const cloudauth_body_sink,
                       out| {
                cloudauth_session_request_stream_body(s, m, u, null(), 0, b, k, out)
            };
            let p = path.as_ptr();
            assert_eq!(
                req(null_mut(), post.as_ptr(), p, &source, null(), &mut r),
                INVALID
            );
            null_message(f, "session");
            assert_eq!(req(x.session, null(), p, &source, null(), &mut r), INVALID);
            null_message(f, "method");
            assert_eq!(
                req(x.session, post.as_ptr(), null(), &source, null(), &mut r),
                INVALID
            );
            null_message(f, "url");
            assert_eq!(
                req(x.session, post.as_ptr(), p, &no_read, null(), &mut r),
                INVALID
            );
            null_message(f, "read");
            assert_eq!(
                req(x.session, post.as_ptr(), p, &source, &no_write, &mut r),
                INVALID
            );
            null_message(f, "write");
            assert_eq!(
                req(x.session, post.as_ptr(), p, &source, null(), null_mut()),
                INVALID
            );
            null_message(f, "out");
            assert!(r.is_null(), "{f}: *out touched on failure");
            fail_first();
            assert_eq!(
                req(x.session, post.as_ptr(), p, &source, null(), &mut r),
                OK
            );
            cleared(f);
            assert_eq!(at, 2, "{f}: the source was read to its end");
            cloudauth_response_free(r);
            // No body, the response streamed: as `cloudauth_session_request_stream`.
            assert_eq!(req(x.session, get.as_ptr(), p, null(), &sink, &mut r), OK);
            cloudauth_response_free(r);
            let rc = with_panic(f, || {
                req(x.session, post.as_ptr(), p, &source, null(), &mut r)
            });
            assert_eq!(rc, INTERNAL);
        }
        "cloudauth_session_set_credentials" => {
            let id = cstr(common::CLIENT_ID);
            let secret = cstr(common::SECRET);
            let set = |s, i, k| cloudauth_session_set_credentials(s, i, k);
            assert_eq!(set(null_mut(), id.as_ptr(), secret.as_ptr()), INVALID);
            null_message(f, "session");
            assert_eq!(set(x.session, null(), secret.as_ptr()), INVALID);
            null_message(f, "client_id");
            assert_eq!(set(x.session, id.as_ptr(), null()), INVALID);
            null_message(f, "client_secret");
            fail_first();
            assert_eq!(set(x.session, id.as_ptr(), secret.as_ptr()), OK);
            cleared(f);
            assert_eq!(
                with_panic(f, || set(x.session, id.as_ptr(), secret.as_ptr())),
                INTERNAL
            );
        }
        "cloudauth_session_stats" => {
            let mut st = cloudauth_stats::default();
            let n = std::mem::size_of::<cloudauth_stats>();
            assert_eq!(cloudauth_session_stats(null(), &mut st, n), INVALID);
            null_message(f, "session");
            assert_eq!(cloudauth_session_stats(x.session, null_mut(), n), INVALID);
            null_message(f, "out");
            fail_first();
            assert_eq!(cloudauth_session_stats(x.session, &mut st, n), OK);
            assert!(st.api_requests > 0);
            cleared(f);
            assert_eq!(
                with_panic(f, || cloudauth_session_stats(x.session, &mut st, n)),
                INTERNAL
            );
        }
        "cloudauth_session_request_async" | "cloudauth_session_token_async" => {
            let start = |s| match f {
                "cloudauth_session_token_async" => {
                    cloudauth_session_token_async(s, Some(on_token), null_mut(), null_mut())
                }
                _ => cloudauth_session_request_async(
                    s,
                    get.as_ptr(),
                    path.as_ptr(),
                    null(),
                    0,
                    null(),
                    0,
                    Some(on_response),
                    null_mut(),
                    null_mut(),
                ),
            };
            assert_eq!(start(null_mut()), INVALID);
            null_message(f, "session");
            let rc = match f {
                "cloudauth_session_token_async" => {
                    cloudauth_session_token_async(x.session, None, null_mut(), null_mut())
                }
                _ => cloudauth_session_request_async(
                    x.session,
                    get.as_ptr(),
                    path.as_ptr(),
                    null(),
                    0,
                    null(),
                    0,
                    None,
                    null_mut(),
                    null_mut(),
                ),
            };
            assert_eq!(rc, INVALID);
            null_message(f, "done");
            fail_first();
            assert_eq!(start(x.session), OK);
            cleared(f);
            assert_eq!(completed(), OK as i32);
            assert_eq!(with_panic(f, || start(x.session)), INTERNAL);
        }
        "cloudauth_session_request_queued" | "cloudauth_session_token_queued" => {
            let start = |s, q| match f {
                "cloudauth_session_token_queued" => {
                    cloudauth_session_token_queued(s, q, 7, null_mut())
                }
                _ => cloudauth_session_request_queued(
                    s,
                    get.as_ptr(),
                    path.as_ptr(),
                    null(),
                    0,
                    null(),
                    0,
                    q,
                    7,
                    null_mut(),
                ),
            };
            assert_eq!(start(null_mut(), x.queue), INVALID);
            null_message(f, "session");
            assert_eq!(start(x.session, null_mut()), INVALID);
            null_message(f, "queue");
            fail_first();
            assert_eq!(start(x.session, x.queue), OK);
            cleared(f);
            drain(x.queue);
            assert_eq!(with_panic(f, || start(x.session, x.queue)), INTERNAL);
        }
        "cloudauth_op_cancel" => {
            cloudauth_op_cancel(null_mut());
            null_message(f, "op");
            let mut op = null_mut();
            assert_eq!(
                cloudauth_session_token_queued(x.session, x.queue, 1, &mut op),
                OK
            );
            fail_first();
            cloudauth_op_cancel(op);
            cleared(f);
            with_panic(f, || cloudauth_op_cancel(op));
            drain(x.queue);
            cloudauth_op_free(op);
        }
        "cloudauth_queue_wait" => {
            let mut c = null_mut();
            assert_eq!(cloudauth_queue_wait(null_mut(), 0, &mut c), INVALID);
            null_message(f, "queue");
            assert_eq!(cloudauth_queue_wait(x.queue, 0, null_mut()), INVALID);
            null_message(f, "out");
            assert_eq!(
                cloudauth_queue_wait(x.queue, 0, &mut c),
                Code::CLOUDAUTH_ERR_TIMEOUT
            );
            assert!(!last_error().is_empty());
            assert_eq!(
                cloudauth_session_token_queued(x.session, x.queue, 1, null_mut()),
                OK
            );
            fail_first();
            assert_eq!(cloudauth_queue_wait(x.queue, 20_000, &mut c), OK);
            cleared(f);
            cloudauth_completion_free(c);
            assert_eq!(
                with_panic(f, || cloudauth_queue_wait(x.queue, 0, &mut c)),
                INTERNAL
            );
        }
        "cloudauth_queue_fd" => {
            assert_eq!(cloudauth_queue_fd(null()), -1);
            null_message(f, "queue");
            let driven = cloudauth_queue_new_caller_driven();
            assert_eq!(cloudauth_queue_fd(driven), -1);
            assert!(last_error().contains("caller-driven"), "{}", last_error());
            cloudauth_queue_free(driven);
            fail_first();
            assert!(cloudauth_queue_fd(x.queue) >= 0);
            cleared(f);
            assert_eq!(with_panic(f, || cloudauth_queue_fd(x.queue)), -1);
        }
        "cloudauth_response_status" => {
            assert_eq!(cloudauth_response_status(null()), 0);
            null_message(f, "response");
            fail_first();
            assert_eq!(cloudauth_response_status(x.response), 200);
            cleared(f);
            assert_eq!(with_panic(f, || cloudauth_response_status(x.response)), 0);
        }
        "cloudauth_response_body" => {
            len = 99;
            assert!(cloudauth_response_body(null(), &mut len).is_null());
            assert_eq!(len, 0);
            null_message(f, "response");
            fail_first();
            assert!(!cloudauth_response_body(x.response, &mut len).is_null());
            assert!(len > 0);
            cleared(f);
            assert!(!cloudauth_response_body(x.response, null_mut()).is_null());
            assert!(with_panic(f, || cloudauth_response_body(x.response, &mut len)).is_null());
        }
        "cloudauth_response_header" => {
            let name = cstr("Content-Type");
            assert!(cloudauth_response_header(null(), name.as_ptr()).is_null());
            null_message(f, "response");
            assert!(cloudauth_response_header(x.response, null()).is_null());
            null_message(f, "name");
            fail_first();
            assert!(!cloudauth_response_header(x.response, name.as_ptr()).is_null());
            cleared(f);
            fail_first();
            let absent = cstr("X-Absent");
            assert!(cloudauth_response_header(x.response, absent.as_ptr()).is_null());
            cleared(f); // an absent header is an answer, not a failure
            assert!(
                with_panic(f, || cloudauth_response_header(x.response, name.as_ptr())).is_null()
            );
        }
        "cloudauth_response_header_count" => {
            assert_eq!(cloudauth_response_header_count(null()), 0);
            null_message(f, "response");
            fail_first();
            assert!(cloudauth_response_header_count(x.response) > 0);
            cleared(f);
            assert_eq!(
                with_panic(f, || cloudauth_response_header_count(x.response)),
                0
            );
        }
        "cloudauth_response_header_at" => {
            let (mut n, mut v) = (null(), null());
            assert_eq!(
                cloudauth_response_header_at(null(), 0, &mut n, &mut v),
                INVALID
            );
            null_message(f, "response");
            assert_eq!(
                cloudauth_response_header_at(x.response, 0, null_mut(), &mut v),
                INVALID
            );
            null_message(f, "name");
            assert_eq!(
                cloudauth_response_header_at(x.response, 0, &mut n, null_mut()),
                INVALID
            );
            null_message(f, "value");
            assert_eq!(
                cloudauth_response_header_at(x.response, 9999, &mut n, &mut v),
                INVALID
            );
            assert!(last_error().contains("out of range"));
            fail_first();
            assert_eq!(
                cloudauth_response_header_at(x.response, 0, &mut n, &mut v),
                OK
            );
            cleared(f);
            let rc = with_panic(f, || {
                cloudauth_response_header_at(x.response, 0, &mut n, &mut v)
            });
            assert_eq!(rc, INTERNAL);
        }
        _ => return false,
    }
    true
}

#[test]
fn every_function_keeps_its_contract() {
    let names = header_functions();
    assert!(names.len() >= 40, "parsed only {names:?}");
    let x = Fixture::new();
    let mut unknown = Vec::new();
    for f in &names {
        if !unsafe { check(f, &x) } {
            unknown.push(f.clone());
        }
    }
    assert!(
        unknown.is_empty(),
        "functions of include/cloudauth.h without a contract case in tests/ffi_contract.rs: {unknown:?}"
    );
    drop(x);
    // Last: it stops callbacks for the whole process.
    fail_first();
    cloudauth_stop_event_callbacks();
    cleared("cloudauth_stop_event_callbacks");
    eprintln!("ffi_contract: {} functions checked", names.len());
}
