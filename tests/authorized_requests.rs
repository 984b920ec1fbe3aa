//! Authorized requests against the stand-in: the Bearer header, 401 refresh-and-retry,
//! redirects, binary bodies, keep-alive, caps and timeouts.

#[path = "support/common/mod.rs"]
mod common;

use cloudauth::Code;
use common::*;
use serde_json::{json, Value};

fn json_body(r: &cloudauth::Response) -> Value {
    serde_json::from_slice(&r.body).unwrap()
}

#[test]
fn requests_carry_the_bearer_token() {
    let server = StandIn::start();
    let s = server.session(&[]);
    let r = get(&s, "/headers").unwrap();
    assert_eq!(r.status, 200);
    let sent = json_body(&r)["headers"]["authorization"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(sent, format!("Bearer {}", token(&s).unwrap()));
    assert!(json_body(&r)["headers"]["user-agent"]
        .as_str()
        .unwrap()
        .starts_with("cloudauth/"));
}

#[test]
fn relative_paths_join_base_url_and_absolute_urls_stand() {
    let server = StandIn::start();
    let s = server.session(&[("base_url", &format!("{}/", server.url))]);
    assert_eq!(get(&s, "status/204").unwrap().status, 204);
    assert_eq!(
        get(&s, &format!("{}/status/202", server.url))
            .unwrap()
            .status,
        202
    );
}

#[test]
fn any_status_is_a_response() {
    let server = StandIn::start();
    let s = server.session(&[]);
    for code in [404, 500, 503] {
        assert_eq!(get(&s, &format!("/status/{code}")).unwrap().status, code);
    }
}

#[test]
fn a_revoked_token_is_replaced_and_the_request_retried_once() {
    let server = StandIn::start();
    let s = server.session(&[]);
    let before = token(&s).unwrap();
    server.revoke();
    let r = get(&s, "/headers").unwrap();
    assert_eq!(r.status, 200);
    assert_ne!(token(&s).unwrap(), before);
    assert_eq!(server.token_requests(), 2);
}

#[test]
fn a_persistent_401_comes_back_after_one_retry() {
    let server = StandIn::start();
    server.configure(json!({"api_script": [{"status": 401}, {"status": 401}]}));
    let s = server.session(&[]);
    assert_eq!(get(&s, "/echo").unwrap().status, 401);
    assert_eq!(server.token_requests(), 2, "one refresh, not a loop");
}

#[test]
fn a_403_does_not_refresh() {
    let server = StandIn::start();
    let s = server.session(&[]);
    assert_eq!(get(&s, "/status/403").unwrap().status, 403);
    assert_eq!(server.token_requests(), 1);
}

#[test]
fn binary_bodies_round_trip() {
    let server = StandIn::start();
    let s = server.session(&[]);
    let body: Vec<u8> = (0..256 * 1024).map(|i| (i % 256) as u8).collect();
    let r = s
        .request(
            "POST",
            "/echo?x=1",
            ["Content-Type: application/octet-stream", "X-Trace: abc"],
            &body,
        )
        .unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(r.body, body);
    assert_eq!(r.header("x-echo-method").unwrap().to_str().unwrap(), "POST");
    assert_eq!(r.header("X-ECHO-QUERY").unwrap().to_str().unwrap(), "x=1");
    assert!(r.header("x-absent").is_none());
}

#[test]
fn connections_are_reused() {
    let server = StandIn::start();
    let s = server.session(&[]);
    assert_eq!(get(&s, "/echo").unwrap().status, 200);
    // Counted after the first request: the token connection, the API connection and this
    // test's own control connection are open by now.
    let before = server.stats()["connections"].as_u64().unwrap();
    for _ in 0..20 {
        assert_eq!(get(&s, "/echo").unwrap().status, 200);
    }
    assert_eq!(
        server.stats()["connections"].as_u64().unwrap(),
        before,
        "no new connection for 20 requests"
    );
}

#[test]
fn a_connection_the_server_closed_while_idle_is_replaced() {
    // The server drops idle keep-alive connections after 200 ms, as nginx does after 75 s.
    let server = StandIn::start_with(&["--idle-timeout", "0.2"]);
    let s = server.session(&[]);
    assert_eq!(get(&s, "/echo").unwrap().status, 200);
    std::thread::sleep(std::time::Duration::from_millis(600));
    assert_eq!(get(&s, "/echo").unwrap().status, 200);
    assert_eq!(get(&s, "/echo").unwrap().status, 200);
}

#[test]
fn a_connection_idle_for_over_a_second_is_looked_at_before_it_is_reused() {
    // Past a second idle, the pool lets the runtime read the server's close first: the
    // request goes out on a new connection without a failed send and a resend.
    let server = StandIn::start_with(&["--idle-timeout", "0.2"]);
    let s = server.session(&[]);
    assert_eq!(get(&s, "/echo").unwrap().status, 200);
    std::thread::sleep(std::time::Duration::from_millis(1300));
    assert_eq!(get(&s, "/echo").unwrap().status, 200);
    let stats = s.stats();
    assert_eq!(
        (stats.api_requests, stats.connection_resends),
        (2, 0),
        "{stats:?}"
    );
}

#[test]
fn a_callers_host_and_accept_headers_are_kept() {
    let server = StandIn::start();
    let s = server.session(&[]);
    let r = s
        .request(
            "GET",
            "/headers",
            ["Host: api.example.com", "Accept: application/json"],
            b"",
        )
        .unwrap();
    let headers = &json_body(&r)["headers"];
    assert_eq!(headers["host"], "api.example.com", "{headers}");
    assert_eq!(headers["accept"], "application/json", "{headers}");
    let r = get(&s, "/headers").unwrap();
    let headers = &json_body(&r)["headers"];
    assert_eq!(headers["host"], format!("127.0.0.1:{}", server.port()));
    assert_eq!(headers["accept"], "*/*");
}

#[test]
fn a_redirect_to_another_origin_drops_the_token() {
    let server = StandIn::start();
    let s = server.session(&[]);
    let other = format!("http://localhost:{}/public/headers", server.port());
    let r = get(&s, &format!("/redirect?to={other}")).unwrap();
    assert_eq!(r.status, 200);
    assert!(
        json_body(&r)["headers"].get("authorization").is_none(),
        "{}",
        json_body(&r)
    );

    let same = format!("{}/public/headers", server.url);
    let r = get(&s, &format!("/redirect?to={same}")).unwrap();
    assert!(json_body(&r)["headers"].get("authorization").is_some());
}

#[test]
fn a_redirect_to_remote_plain_http_is_refused() {
    let server = StandIn::start();
    let s = server.session(&[]);
    let err = get(&s, "/redirect?to=http://api.example.invalid/x").unwrap_err();
    assert_eq!(
        err.code,
        Code::CLOUDAUTH_ERR_INSECURE_URL,
        "{}",
        err.message
    );
}

#[test]
fn plain_http_to_a_remote_host_is_refused_before_sending() {
    let server = StandIn::start();
    let s = server.session(&[]);
    let err = get(&s, "http://api.example.invalid/v5.0/ocr").unwrap_err();
    assert_eq!(err.code, Code::CLOUDAUTH_ERR_INSECURE_URL);
    assert_eq!(
        server.token_requests(),
        0,
        "checked before even fetching a token"
    );
}

#[test]
fn bad_caller_input_is_an_invalid_argument() {
    let server = StandIn::start();
    let s = server.session(&[]);
    for (method, url, header) in [
        ("GET", "/echo", "X-Bad: a\r\nX-Injected: b"),
        ("GET", "/echo", "no-colon"),
        ("GET", "/echo", "Authorization: Bearer mine"),
        ("G ET", "/echo", "X-Ok: 1"),
        ("GET", "ftp://127.0.0.1/x", "X-Ok: 1"),
    ] {
        let err = s.request(method, url, [header], b"").unwrap_err();
        assert_eq!(
            err.code,
            Code::CLOUDAUTH_ERR_INVALID_ARGUMENT,
            "{method} {url} {header:?}"
        );
    }
}

#[test]
fn responses_over_the_cap_are_refused() {
    let server = StandIn::start();
    let s = server.session(&[("max_response_bytes", "1000")]);
    assert_eq!(get(&s, "/big?bytes=1000").unwrap().body.len(), 1000);
    let err = get(&s, "/big?bytes=1001").unwrap_err();
    assert_eq!(err.code, Code::CLOUDAUTH_ERR_TOO_LARGE);
}

#[test]
fn a_slow_api_times_out() {
    let server = StandIn::start();
    let s = server.session(&[("timeout_ms", "300")]);
    let err = get(&s, "/delay/3000").unwrap_err();
    assert_eq!(err.code, Code::CLOUDAUTH_ERR_TIMEOUT, "{}", err.message);
    assert!(err.message.contains("/delay/3000"));
    assert!(err.message.contains("timed out"), "{}", err.message);
}

#[test]
fn a_refused_connection_says_so_in_one_line() {
    let server = StandIn::start();
    // A port nobody listens on: bound, then closed.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut cfg = server.config(&[]);
    cfg.set("base_url", &format!("http://127.0.0.1:{port}"))
        .unwrap();
    let s = cloudauth::Session::new(&cfg).unwrap();
    let err = get(&s, "/v5.0/ocr?sig=hush").unwrap_err();
    assert_eq!(err.code, Code::CLOUDAUTH_ERR_NETWORK, "{}", err.message);
    let m = &err.message;
    assert!(m.starts_with("request to http://127.0.0.1:"), "{m}");
    assert!(m.contains("connect") && m.contains("refused"), "{m}");
    assert!(
        !m.contains('\n') && !m.contains("hush") && m.len() < 300,
        "{m}"
    );
}

#[test]
fn query_strings_stay_out_of_messages() {
    let server = StandIn::start();
    let s = server.session(&[("timeout_ms", "200")]);
    let err = get(&s, "/delay/2000?sig=topsecret").unwrap_err();
    assert!(!err.message.contains("topsecret"), "{}", err.message);
}

#[test]
fn the_ocr_task_flow_works() {
    let server = StandIn::start();
    let s = server.session(&[]);
    let submit = json!({"image": "iVBORw0KGgo=", "settings": {"language": "English"}}).to_string();
    let r = s
        .request(
            "POST",
            "/v5.0/ocr/RecognizeImage",
            ["Content-Type: application/json"],
            submit.as_bytes(),
        )
        .unwrap();
    assert_eq!(r.status, 200);
    let id = String::from_utf8(r.body).unwrap();
    let mut status = String::new();
    for _ in 0..5 {
        let poll = json_body(&get(&s, &format!("/v5.0/ocr/RecognizeImage?id={id}")).unwrap());
        status = poll["taskStatus"].as_str().unwrap().to_owned();
        if status == "Completed" {
            assert_eq!(poll["results"][0]["type"], "Text");
            return;
        }
    }
    panic!("task never completed, last status {status}");
}

#[test]
fn the_proxy_key_routes_every_request_through_the_proxy() {
    // The stand-in plays the proxy: the hosts below are never resolved or contacted, the
    // proxy (on 127.0.0.1) receives the requests in absolute form and answers them itself.
    let server = StandIn::start();
    let mut cfg = server.config(&[("proxy", &server.url), ("allow_insecure_http", "true")]);
    cfg.set("token_url", "http://auth.example.invalid/connect/token")
        .unwrap();
    cfg.set("base_url", "http://api.example.invalid").unwrap();
    let s = cloudauth::Session::new(&cfg).unwrap();
    let r = get(&s, "/headers").unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(json_body(&r)["headers"]["host"], "api.example.invalid");
    assert_eq!(
        server.stats()["last_token_request"]["headers"]["host"],
        "auth.example.invalid"
    );
}

#[test]
fn the_user_agent_key_is_sent() {
    let server = StandIn::start();
    let s = server.session(&[("user_agent", "ocr-batch/2.1")]);
    let r = get(&s, "/headers").unwrap();
    assert_eq!(json_body(&r)["headers"]["user-agent"], "ocr-batch/2.1");
    assert_eq!(
        server.stats()["last_token_request"]["headers"]["user-agent"],
        "ocr-batch/2.1"
    );
}

#[test]
fn the_session_origin_is_base_urls_through_the_c_api_too() {
    use cloudauth::ffi::*;
    use std::ffi::{CStr, CString};
    let server = StandIn::start();
    let s = server.session(&[("base_url", &format!("{}/v4.0/words/", server.url))]);
    assert_eq!(s.origin().to_str().unwrap(), server.url);
    // The origin it names is the one the library's own requests keep the token for.
    let r = get(&s, &format!("{}/headers", server.url)).unwrap();
    assert!(json_body(&r)["headers"].get("authorization").is_some());

    let c = |s: &str| CString::new(s).unwrap();
    unsafe {
        let cfg = cloudauth_config_new();
        for (k, v) in [
            ("client_id", "id"),
            ("client_secret", "secret"),
            ("base_url", "HTTPS://API.Example.com:443/v1?q=1"),
        ] {
            assert_eq!(
                cloudauth_config_set(cfg, c(k).as_ptr(), c(v).as_ptr()),
                Code::CLOUDAUTH_OK
            );
        }
        let mut session = std::ptr::null_mut();
        assert_eq!(cloudauth_session_new(cfg, &mut session), Code::CLOUDAUTH_OK);
        cloudauth_config_free(cfg);
        assert!(cloudauth_session_origin(std::ptr::null()).is_null());
        let error = CStr::from_ptr(cloudauth_last_error()).to_str().unwrap();
        assert_eq!(error, "session is NULL");
        let origin = cloudauth_session_origin(session);
        assert_eq!(
            CStr::from_ptr(origin).to_str(),
            Ok("https://api.example.com")
        );
        assert_eq!(CStr::from_ptr(cloudauth_last_error()).to_bytes(), b"");
        cloudauth_session_free(session);
    }
}
