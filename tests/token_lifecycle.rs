//! The token lifecycle against the stand-in: caching, refresh ahead of expiry, single flight,
//! the grant's encodings, lenient parsing, retries and errors.

#[path = "support/common/mod.rs"]
mod common;

use cloudauth::Code;
use common::*;
use serde_json::json;
use std::sync::{Arc, Barrier};
use std::time::Duration;

#[test]
fn a_cached_token_costs_no_request() {
    let server = StandIn::start();
    let s = server.session(&[]);
    let first = token(&s).unwrap();
    assert_eq!(token(&s).unwrap(), first);
    assert_eq!(server.token_requests(), 1);
    s.invalidate();
    assert_ne!(token(&s).unwrap(), first);
    assert_eq!(server.token_requests(), 2);
}

#[test]
fn the_grant_is_a_form_post_with_scope() {
    let server = StandIn::start();
    let s = server.session(&[("scope", "ocr read")]);
    token(&s).unwrap();
    let last = &server.stats()["last_token_request"];
    assert_eq!(last["form"]["grant_type"], "client_credentials");
    assert_eq!(last["form"]["scope"], "ocr read");
    assert_eq!(last["form"]["client_id"], CLIENT_ID);
    assert_eq!(
        last["headers"]["content-type"],
        "application/x-www-form-urlencoded"
    );
}

#[test]
fn client_secret_basic_survives_odd_characters() {
    let server = StandIn::start();
    let mut cfg = server.config(&[("auth_method", "client_secret_basic")]);
    cfg.set("client_id", "odd+id:%").unwrap();
    cfg.set("client_secret", "s3cr+t:with%odd chars&=").unwrap();
    let s = cloudauth::Session::new(&cfg).unwrap();
    token(&s).unwrap();
    let last = &server.stats()["last_token_request"];
    assert_eq!(last["basic"]["client_id"], "odd+id:%");
    assert!(
        last["form"].get("client_secret").is_none(),
        "basic must not also post the secret"
    );
}

#[test]
fn refreshes_ahead_of_expiry_inline() {
    let server = StandIn::start();
    // A 2 s token with the default 60 s skew: the skew is capped at half the lifetime, so the
    // token is refreshed after 1 s, not on every call. Inline: by the caller, who gets the new one.
    server.configure(json!({"token_expires_in": "2"}));
    let s = server.session(&[("refresh_mode", "inline")]);
    let first = token(&s).unwrap();
    assert_eq!(
        token(&s).unwrap(),
        first,
        "a 2-minute-style short token must not be refetched at once"
    );
    std::thread::sleep(Duration::from_millis(1100));
    let second = token(&s).unwrap();
    assert_ne!(second, first);
    assert_eq!(server.token_requests(), 2);
}

#[test]
fn many_threads_cause_one_token_request() {
    let server = StandIn::start();
    server.configure(json!({"token_delay_ms": 200}));
    let s = Arc::new(server.session(&[]));
    let barrier = Arc::new(Barrier::new(16));
    let threads: Vec<_> = (0..16)
        .map(|_| {
            let (s, barrier) = (s.clone(), barrier.clone());
            std::thread::spawn(move || {
                barrier.wait();
                token(&s).unwrap()
            })
        })
        .collect();
    let tokens: Vec<String> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    assert!(tokens.iter().all(|t| *t == tokens[0]));
    assert_eq!(server.token_requests(), 1);
}

#[test]
fn lenient_token_responses_are_accepted() {
    let server = StandIn::start();
    for knobs in [
        json!({"token_expires_in": "3600", "token_type": "bearer"}),
        json!({"token_expires_in": 3600.5, "token_type": "BEARER"}),
        json!({"token_expires_in": "omit", "token_type": "omit"}),
    ] {
        server.configure(knobs.clone());
        let s = server.session(&[]);
        assert!(token(&s).is_ok(), "{knobs}");
    }
}

#[test]
fn bad_token_responses_are_refused_with_reasons() {
    let server = StandIn::start();
    let cases = [
        (
            json!({"status": 200, "body": "<html>oops</html>"}),
            Code::CLOUDAUTH_ERR_BAD_TOKEN_RESPONSE,
            "not JSON",
        ),
        (
            json!({"status": 200, "body": "{\"expires_in\": 5}"}),
            Code::CLOUDAUTH_ERR_BAD_TOKEN_RESPONSE,
            "no access_token",
        ),
        (
            json!({"status": 200, "body": "{\"access_token\":\"t\",\"expires_in\":-5}"}),
            Code::CLOUDAUTH_ERR_BAD_TOKEN_RESPONSE,
            "expires_in",
        ),
        (
            json!({"status": 200, "body": "{\"access_token\":\"t\",\"token_type\":\"mac\"}"}),
            Code::CLOUDAUTH_ERR_BAD_TOKEN_RESPONSE,
            "token_type",
        ),
        (
            json!({"status": 200, "body": "{\"error\":\"invalid_scope\",\"error_description\":\"no such scope\"}"}),
            Code::CLOUDAUTH_ERR_AUTH_REJECTED,
            "invalid_scope",
        ),
        (
            json!({"status": 200, "pad_bytes": 2 << 20}),
            Code::CLOUDAUTH_ERR_TOO_LARGE,
            "exceeds",
        ),
        (
            json!({"status": 302, "headers": {"Location": "http://127.0.0.1:1/"}}),
            Code::CLOUDAUTH_ERR_TOKEN_ENDPOINT,
            "HTTP 302",
        ),
    ];
    for (entry, code, words) in cases {
        server.configure(json!({"token_default": entry}));
        let err = token(&server.session(&[])).unwrap_err();
        assert_eq!(err.code, code, "{entry}: {}", err.message);
        assert!(err.message.contains(words), "{entry}: {}", err.message);
        assert!(
            err.message.contains("/connect/token"),
            "the step names the URL: {}",
            err.message
        );
    }
}

#[test]
fn wrong_credentials_say_why_without_the_secret() {
    let server = StandIn::start();
    let mut cfg = server.config(&[]);
    cfg.set("client_secret", "not-the-secret").unwrap();
    let err = token(&cloudauth::Session::new(&cfg).unwrap()).unwrap_err();
    assert_eq!(err.code, Code::CLOUDAUTH_ERR_AUTH_REJECTED);
    assert!(
        err.message.contains("HTTP 401") && err.message.contains("invalid_client"),
        "{}",
        err.message
    );
    assert!(!err.message.contains("not-the-secret"));
    assert_eq!(server.token_requests(), 1, "a refusal is not retried");
}

#[test]
fn a_secret_echoed_by_the_server_is_scrubbed() {
    let server = StandIn::start();
    let body = format!(
        "{{\"error\":\"invalid_request\",\"error_description\":\"secret {SECRET} is weak\"}}"
    );
    server.configure(json!({"token_default": {"status": 400, "body": body}}));
    let err = token(&server.session(&[])).unwrap_err();
    assert!(!err.message.contains(SECRET), "{}", err.message);
    assert!(err.message.contains("***"), "{}", err.message);
}

#[test]
fn transient_failures_are_retried() {
    let server = StandIn::start();
    server.configure(script(json!([{"status": 503}, {"status": 500}])));
    assert!(token(&server.session(&[("max_retries", "2")])).is_ok());
    assert_eq!(server.token_requests(), 3);

    let server = StandIn::start();
    server.configure(script(
        json!([{"status": 429, "headers": {"Retry-After": "1"}}, {"close": true}]),
    ));
    assert!(token(&server.session(&[("max_retries", "2")])).is_ok());
    assert_eq!(server.token_requests(), 3);
}

#[test]
fn persistent_failures_give_up_after_max_retries() {
    let server = StandIn::start();
    server.configure(json!({"token_default": {"status": 503, "body": "{\"error\":\"temporarily_unavailable\"}"}}));
    let err = token(&server.session(&[("max_retries", "1")])).unwrap_err();
    assert_eq!(err.code, Code::CLOUDAUTH_ERR_TOKEN_ENDPOINT);
    assert!(
        err.message.contains("HTTP 503") && err.message.contains("2 attempts"),
        "{}",
        err.message
    );
    assert_eq!(server.token_requests(), 2);
}

#[test]
fn retry_after_is_capped() {
    let server = StandIn::start();
    // Asks for an hour; the cap (50 ms here) wins, so the test finishes at once.
    server.configure(script(
        json!([{"status": 503, "headers": {"Retry-After": "3600"}}]),
    ));
    assert!(token(&server.session(&[("max_retry_wait_ms", "50")])).is_ok());
}

#[test]
fn a_slow_token_endpoint_times_out() {
    let server = StandIn::start();
    server.configure(json!({"token_delay_ms": 3000}));
    let err = token(&server.session(&[("timeout_ms", "300")])).unwrap_err();
    assert_eq!(err.code, Code::CLOUDAUTH_ERR_TIMEOUT, "{}", err.message);
    assert_eq!(server.token_requests(), 1, "a timeout is not retried");
}

#[test]
fn nothing_listening_is_a_network_error() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut cfg = cloudauth::Config::default();
    cfg.set("client_id", CLIENT_ID).unwrap();
    cfg.set("client_secret", SECRET).unwrap();
    cfg.set(
        "token_url",
        &format!("http://127.0.0.1:{port}/connect/token"),
    )
    .unwrap();
    cfg.set("max_retries", "0").unwrap();
    let err = token(&cloudauth::Session::new(&cfg).unwrap()).unwrap_err();
    assert_eq!(err.code, Code::CLOUDAUTH_ERR_NETWORK);
    assert!(
        err.message.contains("token request to http://127.0.0.1"),
        "{}",
        err.message
    );
}

#[test]
fn an_insecure_token_url_is_refused_before_any_traffic() {
    let mut cfg = cloudauth::Config::default();
    cfg.set("client_id", CLIENT_ID).unwrap();
    cfg.set("client_secret", SECRET).unwrap();
    cfg.set("token_url", "http://auth.example.invalid/connect/token")
        .unwrap();
    let err = cloudauth::Session::new(&cfg).err().unwrap();
    assert_eq!(err.code, Code::CLOUDAUTH_ERR_INSECURE_URL);
    cfg.set("allow_insecure_http", "true").unwrap();
    assert!(
        cloudauth::Session::new(&cfg).is_ok(),
        "the opt-in is honoured (nothing is sent here)"
    );
}
