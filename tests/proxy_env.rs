//! A proxy named by the environment (`HTTP_PROXY`, which reqwest reads when `proxy` is unset):
//! requests to the session's own origin go through it too, the direct path standing aside.
//! Alone in its file, as the environment belongs to the whole process.

#[path = "support/common/mod.rs"]
mod common;

use common::*;
use serde_json::Value;

#[test]
fn a_proxy_from_the_environment_carries_requests_to_the_sessions_origin() {
    // The stand-in plays the proxy: the hosts below are never resolved or contacted.
    let server = StandIn::start();
    std::env::set_var("HTTP_PROXY", &server.url);
    let mut cfg = server.config(&[("allow_insecure_http", "true")]);
    cfg.set("token_url", "http://auth.example.invalid/connect/token")
        .unwrap();
    cfg.set("base_url", "http://api.example.invalid").unwrap();
    let s = cloudauth::Session::new(&cfg).unwrap();
    let r = get(&s, "/headers").unwrap();
    assert_eq!(r.status, 200);
    let body: Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(body["headers"]["host"], "api.example.invalid");

    // `proxy=none` overrides the environment: then the origin is contacted itself.
    cfg.set("proxy", "none").unwrap();
    cfg.set("token_url", &format!("{}/connect/token", server.url))
        .unwrap();
    cfg.set("base_url", &server.url).unwrap();
    let s = cloudauth::Session::new(&cfg).unwrap();
    let r = get(&s, "/headers").unwrap();
    let body: Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(
        body["headers"]["host"],
        format!("127.0.0.1:{}", server.port())
    );
}

#[test]
fn proxy_values_are_checked_when_set_and_a_failing_proxy_is_named() {
    let server = StandIn::start();
    let mut cfg = server.config(&[]);
    for bad in ["ftp://127.0.0.1:21", "socks5://127.0.0.1:1080", "bogus"] {
        let e = cfg.set("proxy", bad).unwrap_err();
        assert_eq!(
            e.code,
            cloudauth::Code::CLOUDAUTH_ERR_INVALID_ARGUMENT,
            "{bad}"
        );
        assert!(e.message.starts_with("proxy '"), "{}", e.message);
    }
    // A port nothing listens on: the proxy cannot be reached.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    cfg.set("proxy", &format!("http://user:hush@127.0.0.1:{port}"))
        .unwrap();
    cfg.set("max_retries", "0").unwrap();
    let s = cloudauth::Session::new(&cfg).unwrap();
    let e = s.with_token(|_| ()).unwrap_err();
    assert_eq!(
        e.code,
        cloudauth::Code::CLOUDAUTH_ERR_NETWORK,
        "{}",
        e.message
    );
    assert!(
        e.message
            .ends_with(&format!("(through proxy 'http://127.0.0.1:{port}/')")),
        "{}",
        e.message
    );
    assert!(!e.message.contains("hush"), "{}", e.message);
}
