//! Servers that misbehave below HTTP: garbage instead of a status line, a body cut short, a
//! connection held open without a word. Each gives a clear error, never a hang or a crash.

#[path = "support/common/mod.rs"]
mod common;

use cloudauth::Code;
use common::*;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::time::Duration;

/// A one-shot server on 127.0.0.1 that reads a request and answers `reply` (or nothing), for
/// every connection it gets, until the test ends.
fn raw_server(reply: &'static [u8], hang: bool) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { return };
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                let _ = conn.read(&mut buf);
                if hang {
                    std::thread::sleep(Duration::from_secs(5));
                }
                let _ = conn.write_all(reply);
            });
        }
    });
    port
}

fn session_with_token_url(url: &str, extra: &[(&str, &str)]) -> cloudauth::Session {
    let mut cfg = cloudauth::Config::default();
    cfg.set("client_id", CLIENT_ID).unwrap();
    cfg.set("client_secret", SECRET).unwrap();
    cfg.set("token_url", url).unwrap();
    cfg.set("max_retries", "0").unwrap();
    for (k, v) in extra {
        cfg.set(k, v).unwrap();
    }
    cloudauth::Session::new(&cfg).unwrap()
}

#[test]
fn a_token_endpoint_speaking_garbage_is_a_network_error() {
    let port = raw_server(b"SSH-2.0-OpenSSH_9.2\r\n\r\n", false);
    let s = session_with_token_url(&format!("http://127.0.0.1:{port}/connect/token"), &[]);
    let err = token(&s).unwrap_err();
    assert_eq!(err.code, Code::CLOUDAUTH_ERR_NETWORK, "{}", err.message);
    assert!(
        err.message.starts_with("token request to http://127.0.0.1"),
        "{}",
        err.message
    );
}

#[test]
fn a_token_body_cut_short_is_a_network_error() {
    let port = raw_server(
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 500\r\n\r\n{\"access_token\":\"abc",
        false,
    );
    let s = session_with_token_url(&format!("http://127.0.0.1:{port}/connect/token"), &[]);
    let err = token(&s).unwrap_err();
    assert_eq!(err.code, Code::CLOUDAUTH_ERR_NETWORK, "{}", err.message);
}

#[test]
fn a_token_endpoint_that_accepts_and_says_nothing_times_out() {
    let port = raw_server(b"", true);
    let s = session_with_token_url(
        &format!("http://127.0.0.1:{port}/connect/token"),
        &[("timeout_ms", "300")],
    );
    let err = token(&s).unwrap_err();
    assert_eq!(err.code, Code::CLOUDAUTH_ERR_TIMEOUT, "{}", err.message);
}

#[test]
fn an_api_speaking_garbage_is_a_network_error_and_the_session_survives() {
    let server = StandIn::start();
    let s = server.session(&[]);
    let port = raw_server(b"\x00\x01\x02 not http at all\r\n\r\n", false);
    let err = get(&s, &format!("http://127.0.0.1:{port}/x")).unwrap_err();
    assert_eq!(err.code, Code::CLOUDAUTH_ERR_NETWORK, "{}", err.message);
    assert!(
        err.message.contains(&format!("127.0.0.1:{port}/x")),
        "{}",
        err.message
    );
    // The same session goes on working against a sound server.
    assert_eq!(get(&s, "/echo").unwrap().status, 200);
}

#[test]
fn an_oversized_header_block_is_refused() {
    // 1 MiB of headers: hyper refuses it rather than buffering without bound.
    static REPLY: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    let reply = REPLY.get_or_init(|| {
        let mut r = b"HTTP/1.1 200 OK\r\n".to_vec();
        for i in 0..20_000 {
            r.extend_from_slice(format!("X-Filler-{i}: {}\r\n", "v".repeat(40)).as_bytes());
        }
        r.extend_from_slice(b"Content-Length: 0\r\n\r\n");
        r
    });
    let port = raw_server(reply, false);
    let server = StandIn::start();
    let s = server.session(&[]);
    let err = get(&s, &format!("http://127.0.0.1:{port}/x")).unwrap_err();
    assert_eq!(err.code, Code::CLOUDAUTH_ERR_NETWORK, "{}", err.message);
}
