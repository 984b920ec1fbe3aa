//! The production token lifecycle against the stand-in: background and eager refresh, secret
//! rotation, counters and events (issue 8).

#[path = "support/common/mod.rs"]
mod common;

use cloudauth::events::{Event, EventKind};
use cloudauth::Code;
use common::{get, token, StandIn, CLIENT_ID, SECRET};
use serde_json::json;
use std::sync::{Arc, Barrier, Mutex};
use std::time::{Duration, Instant};

/// Every event a session reported, as (kind, reason, result, http_status).
type Seen = (EventKind, String, Code, u16);
#[derive(Clone, Default)]
struct Recorder(Arc<Mutex<Vec<Seen>>>);

impl Recorder {
    fn config(&self, server: &StandIn, extra: &[(&str, &str)]) -> cloudauth::Config {
        let mut cfg = server.config(extra);
        let log = self.0.clone();
        cfg.events = cloudauth::events::Events::new(Some(Arc::new(move |e: &Event<'_>| {
            log.lock().unwrap().push((
                e.kind,
                e.reason.map_or("", |r| r.name()).to_owned(),
                e.result,
                e.http_status,
            ));
        })));
        cfg
    }

    fn kinds(&self) -> Vec<(EventKind, String)> {
        self.0
            .lock()
            .unwrap()
            .iter()
            .map(|(k, r, _, _)| (*k, r.clone()))
            .collect()
    }
}

/// Waits (bounded) until `cond` holds.
fn eventually(what: &str, limit: Duration, cond: impl Fn() -> bool) {
    let end = Instant::now() + limit;
    while !cond() {
        assert!(Instant::now() < end, "timed out waiting for: {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn background_mode_answers_from_memory_while_a_slow_refresh_runs() {
    let server = StandIn::start();
    // A 2 s token is due for refresh after 1 s; the endpoint then takes 1.2 s to answer: a
    // caller that waited for it would take that long, a loaded machine adds far less.
    server.configure(json!({"token_expires_in": "2"}));
    let s = server.session(&[]);
    let first = token(&s).unwrap();
    server.configure(json!({"token_delay_ms": 1200}));
    std::thread::sleep(Duration::from_millis(1100));
    let started = Instant::now();
    assert_eq!(
        token(&s).unwrap(),
        first,
        "the valid token is served at once"
    );
    assert!(
        started.elapsed() < Duration::from_millis(800),
        "a caller waited {:?} for a refresh although the token was valid",
        started.elapsed()
    );
    eventually("the background refresh", Duration::from_secs(5), || {
        token(&s).unwrap() != first
    });
    assert_eq!(server.token_requests(), 2);
    let st = s.stats();
    assert_eq!(st.background_refreshes, 1);
    assert_eq!(st.token_requests, 2);
}

#[test]
fn background_refresh_under_many_threads_never_makes_a_caller_wait() {
    let server = StandIn::start();
    // Each refresh takes 600 ms at the endpoint: a caller that waited for one would take that.
    server.configure(json!({"token_expires_in": "1.8", "token_delay_ms": 600}));
    let s = Arc::new(server.session(&[]));
    token(&s).unwrap(); // the first fetch is the only one a caller may wait for
    let barrier = Arc::new(Barrier::new(8));
    let threads: Vec<_> = (0..8)
        .map(|_| {
            let (s, barrier) = (s.clone(), barrier.clone());
            std::thread::spawn(move || {
                barrier.wait();
                let end = Instant::now() + Duration::from_millis(4500);
                let (mut slowest, mut seen) = (Duration::ZERO, std::collections::HashSet::new());
                while Instant::now() < end {
                    let t0 = Instant::now();
                    seen.insert(token(&s).unwrap());
                    slowest = slowest.max(t0.elapsed());
                    std::thread::sleep(Duration::from_millis(2));
                }
                (slowest, seen)
            })
        })
        .collect();
    let mut all = std::collections::HashSet::new();
    for t in threads {
        let (slowest, seen) = t.join().unwrap();
        assert!(
            slowest < Duration::from_millis(400),
            "a call took {slowest:?} (the endpoint takes 600 ms)"
        );
        all.extend(seen);
    }
    // Several lifetimes passed: tokens rotated, always one refresh per lifetime.
    let requests = server.token_requests();
    assert!(all.len() >= 3, "only {} tokens seen", all.len());
    // Every fetched token was served (the last may land after the threads stopped).
    assert!(
        all.len() as u64 >= requests - 1,
        "{} served of {requests}",
        all.len()
    );
    // A refresh may still be in flight (counted by the server on arrival, by us when done).
    eventually("the last refresh to land", Duration::from_secs(2), || {
        s.stats().background_refreshes == server.token_requests() - 1
    });
}

#[test]
fn a_failed_background_refresh_keeps_the_token_and_backs_off() {
    let server = StandIn::start();
    server.configure(json!({"token_expires_in": "3"}));
    let rec = Recorder::default();
    let s = cloudauth::Session::new(&rec.config(&server, &[("max_retries", "0")])).unwrap();
    let first = token(&s).unwrap();
    server.configure(json!({"token_default": {"status": 503}}));
    std::thread::sleep(Duration::from_millis(1600)); // inside the refresh window
    let end = Instant::now() + Duration::from_millis(1000);
    while Instant::now() < end {
        assert_eq!(token(&s).unwrap(), first);
        std::thread::sleep(Duration::from_millis(5));
    }
    // ~200 calls in the window; the pause after each failure (0.5 s, then 1 s, with jitter)
    // allows a handful of attempts, never one per call.
    let attempts = server.token_requests() - 1;
    assert!((1..=5).contains(&attempts), "{attempts} refresh attempts");
    assert_eq!(s.stats().token_failures, attempts);
    assert!(rec
        .kinds()
        .contains(&(EventKind::TokenFetchFailed, "refresh_ahead".into())));
    // Never served past expiry: once it has expired, the caller gets the endpoint's error.
    std::thread::sleep(Duration::from_millis(600));
    let err = token(&s).unwrap_err();
    assert_eq!(err.code, Code::CLOUDAUTH_ERR_TOKEN_ENDPOINT);
    server.configure(json!({"token_default": null}));
    assert_ne!(token(&s).unwrap(), first);
}

#[test]
fn eager_mode_refreshes_an_idle_session_and_stops_when_freed() {
    let server = StandIn::start();
    server.configure(json!({"token_expires_in": "1.5"}));
    let s = server.session(&[("refresh_mode", "eager")]);
    let first = token(&s).unwrap();
    // Idle across two refresh points (0.75 s and ~1.5 s): the refresher keeps it valid.
    std::thread::sleep(Duration::from_millis(1800));
    assert!(server.token_requests() >= 3, "{}", server.token_requests());
    let before = server.token_requests();
    let t0 = Instant::now();
    let now = token(&s).unwrap();
    assert_ne!(now, first);
    assert!(
        t0.elapsed() < Duration::from_millis(500),
        "{:?}",
        t0.elapsed()
    );
    assert_eq!(
        server.token_requests(),
        before,
        "the call found a valid token"
    );
    assert_eq!(s.stats().background_refreshes, before - 1);
    drop(s);
    let at_free = server.token_requests();
    std::thread::sleep(Duration::from_millis(2000));
    assert_eq!(
        server.token_requests(),
        at_free,
        "no token request after free"
    );
}

#[test]
fn refresh_in_moves_the_refresh_point_earlier() {
    let server = StandIn::start();
    server.configure(json!({"token_refresh_in": 1}));
    let s = server.session(&[("refresh_mode", "inline")]);
    let first = token(&s).unwrap();
    std::thread::sleep(Duration::from_millis(1100));
    assert_ne!(
        token(&s).unwrap(),
        first,
        "refresh_in 1 s, expires_in 3600 s"
    );
}

#[test]
fn set_credentials_rotates_the_secret_both_ways() {
    let server = StandIn::start();
    let rec = Recorder::default();
    let s = cloudauth::Session::new(&rec.config(&server, &[])).unwrap();
    token(&s).unwrap();
    server.configure(json!({"clients": {"rotated-id": "new-secret"}}));
    s.set_credentials("rotated-id", "new-secret").unwrap();
    s.invalidate();
    token(&s).unwrap();
    let last = server.stats()["last_token_request"].clone();
    assert_eq!(last["form"]["client_id"], "rotated-id");
    assert_eq!(last["form"]["client_secret"], "new-secret");
    assert_eq!(
        rec.kinds()[1],
        (EventKind::TokenFetched, "credentials_changed".into())
    );
    // And back: the server accepts only the original pair again.
    server.configure(json!({"clients": null}));
    s.set_credentials(CLIENT_ID, SECRET).unwrap();
    s.revoke_and_fetch(&server);
    assert_eq!(
        server.stats()["last_token_request"]["form"]["client_id"],
        CLIENT_ID
    );
    assert!(s.set_credentials("", "x").is_err());
}

trait RevokeAndFetch {
    fn revoke_and_fetch(&self, server: &StandIn);
}

impl RevokeAndFetch for cloudauth::Session {
    /// A revoked token: the next request gets a 401, the session fetches with the current
    /// credentials and resends.
    fn revoke_and_fetch(&self, server: &StandIn) {
        server.revoke();
        assert_eq!(get(self, "/headers").unwrap().status, 200);
    }
}

#[test]
fn client_secret_file_is_read_at_every_token_request() {
    let server = StandIn::start();
    let dir = std::env::temp_dir().join(format!("cloudauth-secret-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("secret");
    std::fs::write(&path, "demo-secret\n").unwrap();
    let mut cfg = cloudauth::Config::default();
    for (k, v) in [
        ("client_id", CLIENT_ID),
        ("client_secret_file", path.to_str().unwrap()),
        ("token_url", &format!("{}/connect/token", server.url)),
        ("base_url", &server.url),
    ] {
        cfg.set(k, v).unwrap();
    }
    let s = cloudauth::Session::new(&cfg).unwrap();
    token(&s).unwrap();
    assert_eq!(
        server.stats()["last_token_request"]["form"]["client_secret"],
        "demo-secret"
    );
    // Rotate the mounted file and the server's accepted secret; no code change.
    server.configure(json!({"clients": {CLIENT_ID: "rotated"}}));
    std::fs::write(&path, "rotated\r\n").unwrap();
    s.revoke_and_fetch(&server);
    assert_eq!(
        server.stats()["last_token_request"]["form"]["client_secret"],
        "rotated"
    );
    // A vanished file is a clear error naming the path, never the secret.
    std::fs::remove_file(&path).unwrap();
    s.invalidate();
    let err = token(&s).unwrap_err();
    assert_eq!(err.code, Code::CLOUDAUTH_ERR_INVALID_ARGUMENT);
    assert!(
        err.message.contains(path.to_str().unwrap()),
        "{}",
        err.message
    );
    assert!(!err.message.contains("rotated"));
    // Exclusive with client_secret, and checked when the session is made.
    cfg.set("client_secret", "x").unwrap();
    let err = cloudauth::Session::new(&cfg)
        .err()
        .expect("both secrets set");
    assert!(err.message.contains("both"), "{}", err.message);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn counters_and_events_on_a_scripted_run() {
    let server = StandIn::start();
    // One 503 then success (a retry), later a 401 from the API (an unauthorized resend).
    server.configure(json!({"token_script": [{"status": 503, "headers": {"Retry-After": "0"}}]}));
    let rec = Recorder::default();
    let s = cloudauth::Session::new(&rec.config(&server, &[("refresh_mode", "inline")])).unwrap();
    assert_eq!(get(&s, "/headers").unwrap().status, 200);
    server.revoke();
    assert_eq!(get(&s, "/headers").unwrap().status, 200);
    s.invalidate();
    token(&s).unwrap();
    let st = s.stats();
    assert_eq!(st.token_requests, 4, "{st:?}"); // 503 + ok, after 401, after invalidate
    assert_eq!(st.token_failures, 0);
    assert_eq!(st.api_requests, 3);
    assert_eq!(st.unauthorized_resends, 1);
    assert_eq!(st.background_refreshes, 0);
    assert!(st.token_expires_in_ms > 3_500_000 && st.token_expires_in_ms <= 3_600_000);
    assert_eq!(
        rec.kinds(),
        vec![
            (EventKind::Retry, String::new()),
            (EventKind::TokenFetched, "first_use".into()),
            (EventKind::Unauthorized, String::new()),
            (EventKind::TokenFetched, "unauthorized".into()),
            (EventKind::TokenFetched, "invalidated".into()),
        ]
    );
    let events = rec.0.lock().unwrap().clone();
    assert_eq!(events[0].3, 503, "the retry carries the status it retried");
    // A failure: counted, reported with its code and status.
    server.configure(json!({"clients": {"someone": "else"}}));
    s.invalidate();
    assert_eq!(
        token(&s).unwrap_err().code,
        Code::CLOUDAUTH_ERR_AUTH_REJECTED
    );
    assert_eq!(s.stats().token_failures, 1);
    let last = rec.0.lock().unwrap().last().cloned().unwrap();
    assert_eq!(
        (last.0, last.2, last.3),
        (
            EventKind::TokenFetchFailed,
            Code::CLOUDAUTH_ERR_AUTH_REJECTED,
            401
        )
    );
}

#[test]
fn an_event_callback_may_call_back_into_the_session() {
    let server = StandIn::start();
    let slot: Arc<Mutex<Option<Arc<cloudauth::Session>>>> = Arc::default();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let mut cfg = server.config(&[]);
    let (slot2, seen2) = (slot.clone(), seen.clone());
    cfg.events = cloudauth::events::Events::new(Some(Arc::new(move |e: &Event<'_>| {
        if e.kind == EventKind::TokenFetched {
            let s = slot2.lock().unwrap().clone().unwrap();
            seen2.lock().unwrap().push(token(&s).map(|t| t.len()));
            let _ = s.stats();
        }
    })));
    let s = Arc::new(cloudauth::Session::new(&cfg).unwrap());
    *slot.lock().unwrap() = Some(s.clone());
    token(&s).unwrap();
    assert!(matches!(seen.lock().unwrap()[..], [Ok(n)] if n > 0));
    slot.lock().unwrap().take();
}

#[test]
fn soak_flaky_endpoint_and_random_revocations_fail_no_call() {
    let server = StandIn::start();
    server.configure(json!({
        "token_expires_in": "0.8", "token_fail_ratio": 0.33, "api_revoke_ratio": 0.003,
        "api_revoke_gap_ms": 250,
        "random_seed": 7
    }));
    let s = Arc::new(server.session(&[("max_retries", "6"), ("max_retry_wait_ms", "50")]));
    let threads: Vec<_> = (0..8)
        .map(|_| {
            let s = s.clone();
            std::thread::spawn(move || {
                let end = Instant::now() + Duration::from_secs(4);
                let mut calls = 0;
                while Instant::now() < end {
                    let r = get(&s, "/headers").unwrap_or_else(|e| panic!("a call failed: {e}"));
                    assert_eq!(r.status, 200);
                    calls += 1;
                }
                calls
            })
        })
        .collect();
    let calls: u64 = threads.into_iter().map(|t| t.join().unwrap()).sum();
    let st = s.stats();
    assert!(calls > 100, "{calls} calls");
    assert!(st.unauthorized_resends > 0, "{st:?}");
    // Several lifetimes and revocations went by, and retried endpoint failures with them.
    assert!(st.token_requests >= 5, "{st:?}");
    assert_eq!(st.token_failures, 0, "{st:?}");
}

#[test]
fn eager_mode_fetches_an_invalidated_token_at_first_use_not_at_once() {
    let server = StandIn::start();
    server.configure(json!({"token_expires_in": "1.5"}));
    let s = server.session(&[("refresh_mode", "eager")]);
    token(&s).unwrap();
    assert_eq!(server.token_requests(), 1);
    s.invalidate();
    // Past the old token's refresh point (0.75 s): nobody used the session, nothing is fetched.
    std::thread::sleep(Duration::from_millis(1200));
    assert_eq!(server.token_requests(), 1, "fetched without a use");
    token(&s).unwrap();
    assert_eq!(server.token_requests(), 2, "the first use fetched it");
    // And the refresher keeps the new token fresh again, unused.
    // The server counts the request before the refresher has read the answer: wait for both.
    let deadline = Instant::now() + Duration::from_secs(20);
    while (server.token_requests() < 3 || s.stats().background_refreshes < 1)
        && Instant::now() < deadline
    {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(server.token_requests() >= 3, "{}", server.token_requests());
    assert!(s.stats().background_refreshes >= 1);
}
