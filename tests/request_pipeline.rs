//! The one request pipeline (`src/http/pipeline.rs`), on every path that carries a hop: the
//! direct connection, reqwest through a proxy (a small forward proxy below), async operations
//! on the library threads and a caller-driven queue. (The certificate-bound client's are in
//! tests/mtls.rs, which has the PKI.) RFC 9110 §15.4 redirects, what leaves the origin, the
//! 401 resend of the hop that got it, one deadline, a reset token request, the pools.
//!
//! The servers are ours, on 127.0.0.1: an origin and another origin (two listeners of one
//! recorder that logs every request and counts the connections open to each), and a proxy.
//! Everything stops by itself (accept loops have deadlines, reads time out).

use cloudauth::ops::driven::Driver;
use cloudauth::ops::queue::Queue;
use cloudauth::{Code, Config, Response, Session};
use std::collections::HashSet;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// One request as a server saw it.
#[derive(Clone, Debug)]
struct Seen {
    listener: &'static str,
    method: String,
    path: String,
    body: Vec<u8>,
    headers: Vec<(String, String)>,
}

impl Seen {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

#[derive(Default)]
struct Shared {
    log: Mutex<Vec<Seen>>,
    tokens: AtomicU64,
    /// Reset the next token request after reading it (once).
    reset_token: AtomicBool,
    /// Read the second API request of each connection whole, then close without a word.
    drop_second: AtomicBool,
    open_origin: AtomicI64,
    open_other: AtomicI64,
    open_proxy: AtomicI64,
    ports: Mutex<(u16, u16)>,
}

struct Servers {
    shared: Arc<Shared>,
    origin: String,
    proxy: String,
}

impl Servers {
    fn start() -> Servers {
        let shared = Arc::new(Shared::default());
        let (origin, other, proxy) = (listen(), listen(), listen());
        let port = |l: &TcpListener| l.local_addr().unwrap().port();
        let (po, pt, pp) = (port(&origin), port(&other), port(&proxy));
        *shared.ports.lock().unwrap() = (po, pt);
        for (listener, name) in [(origin, "origin"), (other, "other")] {
            let shared = shared.clone();
            accept_loop(listener, move |stream| {
                let open = match name {
                    "origin" => &shared.open_origin,
                    _ => &shared.open_other,
                };
                open.fetch_add(1, Ordering::SeqCst);
                serve(stream, name, &shared);
                open.fetch_sub(1, Ordering::SeqCst);
            });
        }
        let s = shared.clone();
        accept_loop(proxy, move |stream| {
            s.open_proxy.fetch_add(1, Ordering::SeqCst);
            forward(stream);
            s.open_proxy.fetch_sub(1, Ordering::SeqCst);
        });
        Servers {
            shared,
            origin: format!("http://127.0.0.1:{po}"),
            proxy: format!("http://127.0.0.1:{pp}"),
        }
    }

    fn take_log(&self) -> Vec<Seen> {
        std::mem::take(&mut *self.shared.log.lock().unwrap())
    }

    fn config(&self, extra: &[(&str, &str)]) -> Config {
        let mut cfg = Config::default();
        for (k, v) in [
            ("client_id", "pipeline-client"),
            ("client_secret", "a-secret-long-enough-for-hs256-assertions"),
            ("token_url", &format!("{}/token", self.origin)),
            ("base_url", &self.origin),
            ("refresh_mode", "inline"),
            ("timeout_ms", "10000"),
        ] {
            cfg.set(k, v).unwrap();
        }
        for (k, v) in extra {
            cfg.set(k, v).unwrap();
        }
        cfg
    }

    fn open(&self, which: &str) -> i64 {
        match which {
            "origin" => &self.shared.open_origin,
            "other" => &self.shared.open_other,
            _ => &self.shared.open_proxy,
        }
        .load(Ordering::SeqCst)
    }
}

fn listen() -> TcpListener {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.set_nonblocking(true).unwrap();
    l
}

/// Accepts for at most 200 s, each connection on a thread of its own.
fn accept_loop(listener: TcpListener, handle: impl Fn(TcpStream) + Send + Sync + 'static) {
    let handle = Arc::new(handle);
    thread::spawn(move || {
        let deadline = Instant::now() + Duration::from_secs(200);
        while Instant::now() < deadline {
            match listener.accept() {
                Ok((stream, _)) => {
                    stream.set_nonblocking(false).unwrap();
                    stream
                        .set_read_timeout(Some(Duration::from_secs(150)))
                        .unwrap();
                    let handle = handle.clone();
                    thread::spawn(move || handle(stream));
                }
                Err(_) => thread::sleep(Duration::from_millis(2)),
            }
        }
    });
}

/// Method, target, headers, body.
type Request = (String, String, Vec<(String, String)>, Vec<u8>);

/// A request head and body: method, target, headers; `None` at the connection's end.
fn read_request(reader: &mut impl BufRead) -> Option<Request> {
    let mut line = String::new();
    reader.read_line(&mut line).ok().filter(|&n| n > 0)?;
    let mut parts = line.split_whitespace();
    let (method, target) = (parts.next()?.to_owned(), parts.next()?.to_owned());
    let mut headers = Vec::new();
    let mut length = 0usize;
    loop {
        let mut h = String::new();
        reader.read_line(&mut h).ok().filter(|&n| n > 0)?;
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        let (n, v) = h.split_once(':')?;
        if n.eq_ignore_ascii_case("content-length") {
            length = v.trim().parse().ok()?;
        }
        headers.push((n.trim().to_owned(), v.trim().to_owned()));
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).ok()?;
    Some((method, target, headers, body))
}

fn respond(w: &mut TcpStream, status: u16, extra: &[(&str, String)], body: &[u8]) -> bool {
    let mut head = format!("HTTP/1.1 {status} X\r\nContent-Length: {}\r\n", body.len());
    for (n, v) in extra {
        head.push_str(&format!("{n}: {v}\r\n"));
    }
    head.push_str("\r\n");
    w.write_all(head.as_bytes()).is_ok() && w.write_all(body).is_ok()
}

/// The recorder's routes:
/// - `POST /token`: a token `tok-N`, or (once, when asked) a reset after reading the request;
/// - `/hop/STATUS/REST`: STATUS with `Location` REST on this origin (`@other/…`: on the other);
/// - `/slow/MS/REST`: waits MS, then as REST;
/// - `/refuses-first-token/…`: 401 to the first token issued, 200 otherwise;
/// - anything else: 200 "ok".
fn serve(stream: TcpStream, listener: &'static str, shared: &Shared) {
    let mut writer = stream.try_clone().unwrap();
    let mut reader = BufReader::new(stream);
    let mut nth = 0;
    while let Some((method, target, headers, body)) = read_request(&mut reader) {
        nth += 1;
        let seen = Seen {
            listener,
            method: method.clone(),
            path: target.clone(),
            body: body.clone(),
            headers: headers.clone(),
        };
        shared.log.lock().unwrap().push(seen);
        let mut path = target.as_str();
        while let Some(rest) = path.strip_prefix("/slow/") {
            let (ms, rest) = rest.split_once('/').unwrap();
            thread::sleep(Duration::from_millis(ms.parse().unwrap()));
            path = &target[target.len() - rest.len() - 1..];
        }
        let ok = if nth == 2 && path != "/token" && shared.drop_second.load(Ordering::SeqCst) {
            let _ = writer.shutdown(std::net::Shutdown::Both);
            return;
        } else if path == "/token" {
            if shared.reset_token.swap(false, Ordering::SeqCst) {
                reset(&writer);
                return;
            }
            let n = shared.tokens.fetch_add(1, Ordering::SeqCst) + 1;
            let token =
                format!(r#"{{"access_token":"tok-{n}","expires_in":3600,"token_type":"Bearer"}}"#);
            respond(
                &mut writer,
                200,
                &[("Content-Type", "application/json".into())],
                token.as_bytes(),
            )
        } else if let Some(rest) = path.strip_prefix("/hop/") {
            let (status, rest) = rest.split_once('/').unwrap();
            let (po, pt) = *shared.ports.lock().unwrap();
            let location = match rest.strip_prefix("@other/") {
                Some(r) => format!("http://127.0.0.1:{pt}/{r}"),
                None => match rest.strip_prefix("@origin/") {
                    Some(r) => format!("http://127.0.0.1:{po}/{r}"),
                    None => format!("/{rest}"),
                },
            };
            respond(
                &mut writer,
                status.parse().unwrap(),
                &[("Location", location)],
                b"",
            )
        } else if path.starts_with("/refuses-first-token/")
            && seen_auth(&headers) == Some("Bearer tok-1")
        {
            respond(&mut writer, 401, &[], b"refused")
        } else {
            respond(&mut writer, 200, &[], b"ok")
        };
        if !ok {
            return;
        }
    }
}

fn seen_auth(headers: &[(String, String)]) -> Option<&str> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("authorization"))
        .map(|(_, v)| v.as_str())
}

/// Closes with a TCP reset (SO_LINGER 0): the request was read, no answer comes.
fn reset(stream: &TcpStream) {
    use std::os::fd::AsRawFd;
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: a valid socket and a correctly sized option.
    unsafe {
        libc::setsockopt(
            stream.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            &linger as *const _ as *const libc::c_void,
            std::mem::size_of::<libc::linger>() as u32,
        );
    }
}

/// A forward proxy for plain http to 127.0.0.1: each absolute-form request goes upstream on a
/// connection of its own, the answer (always with a Content-Length here) comes back.
fn forward(stream: TcpStream) {
    let mut writer = stream.try_clone().unwrap();
    let mut reader = BufReader::new(stream);
    while let Some((method, target, headers, body)) = read_request(&mut reader) {
        let Some(rest) = target.strip_prefix("http://127.0.0.1:") else {
            let _ = respond(&mut writer, 502, &[], b"only 127.0.0.1");
            return;
        };
        let (port, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
        let Ok(mut up) = TcpStream::connect(("127.0.0.1", port.parse::<u16>().unwrap())) else {
            let _ = respond(&mut writer, 502, &[], b"upstream");
            return;
        };
        let mut head = format!("{method} {path} HTTP/1.1\r\n");
        for (n, v) in &headers {
            if !n.eq_ignore_ascii_case("proxy-connection") {
                head.push_str(&format!("{n}: {v}\r\n"));
            }
        }
        head.push_str("\r\n");
        if up.write_all(head.as_bytes()).is_err() || up.write_all(&body).is_err() {
            return;
        }
        let mut upr = BufReader::new(up);
        let mut status = String::new();
        if upr.read_line(&mut status).unwrap_or(0) == 0 {
            // The upstream closed or reset: so does the proxy.
            reset(&writer);
            return;
        }
        let mut out = status.into_bytes();
        let mut length = 0usize;
        loop {
            let mut h = String::new();
            if upr.read_line(&mut h).unwrap_or(0) == 0 {
                return;
            }
            if let Some((n, v)) = h.trim_end().split_once(':') {
                if n.eq_ignore_ascii_case("content-length") {
                    length = v.trim().parse().unwrap_or(0);
                }
            }
            out.extend_from_slice(h.as_bytes());
            if h == "\r\n" {
                break;
            }
        }
        let mut rest = vec![0; length];
        if upr.read_exact(&mut rest).is_err() {
            return;
        }
        out.extend_from_slice(&rest);
        if writer.write_all(&out).is_err() {
            return;
        }
    }
}

/// How a test sends its request.
#[derive(Clone, Copy, Debug)]
enum Path {
    /// The calling thread, the direct connection.
    Direct,
    /// The calling thread, reqwest through the proxy.
    Proxy,
    /// An async operation on the library threads (direct connection).
    Async,
    /// An operation on a caller-driven queue (direct connection).
    Driven,
}

const PATHS: [Path; 4] = [Path::Direct, Path::Proxy, Path::Async, Path::Driven];

fn session(servers: &Servers, path: Path, extra: &[(&str, &str)]) -> Session {
    let mut cfg = servers.config(extra);
    if let Path::Proxy = path {
        cfg.set("proxy", &servers.proxy).unwrap();
    } else {
        cfg.set("proxy", "none").unwrap();
    }
    Session::new(&cfg).unwrap()
}

fn send(
    s: &Session,
    path: Path,
    method: &str,
    target: &str,
    headers: &[&str],
    body: &[u8],
) -> cloudauth::Result<Response> {
    let headers = headers.iter().copied();
    match path {
        Path::Direct | Path::Proxy => s.request(method, target, headers, body),
        Path::Async => {
            let (tx, rx) = mpsc::channel();
            let _op = s
                .request_async(method, target, headers, body, move |r| {
                    let _ = tx.send(r);
                })
                .unwrap();
            rx.recv_timeout(Duration::from_secs(30)).unwrap()
        }
        Path::Driven => {
            let driver = Driver::new().unwrap();
            let queue = Arc::new(Queue::for_driver());
            let q = queue.clone();
            let _op = s
                .request_driven(&driver, method, target, headers, body, move |r| q.push(r))
                .unwrap();
            driver
                .wait(&queue, Some(Duration::from_secs(30)))
                .unwrap()
                .expect("a completion within 30 s")
        }
    }
}

/// (listener, method, path, body) of each API request (token requests left out).
fn hops(log: &[Seen]) -> Vec<(&'static str, String, String, String)> {
    log.iter()
        .filter(|s| s.path != "/token")
        .map(|s| {
            (
                s.listener,
                s.method.clone(),
                s.path.clone(),
                String::from_utf8_lossy(&s.body).into_owned(),
            )
        })
        .collect()
}

fn hop(
    listener: &'static str,
    method: &str,
    path: &str,
    body: &str,
) -> (&'static str, String, String, String) {
    (listener, method.into(), path.into(), body.into())
}

#[test]
fn put_and_delete_keep_their_method_and_body_through_301_and_302_on_every_path() {
    let servers = Servers::start();
    for path in PATHS {
        let s = session(&servers, path, &[]);
        for status in ["301", "302"] {
            for method in ["PUT", "DELETE"] {
                let target = format!("/hop/{status}/items/");
                let r = send(
                    &s,
                    path,
                    method,
                    &target,
                    &["Content-Type: text/plain"],
                    b"the item",
                )
                .unwrap();
                assert_eq!(r.status, 200, "{path:?} {method} {status}");
                let log = servers.take_log();
                assert_eq!(
                    hops(&log),
                    vec![
                        hop("origin", method, &target, "the item"),
                        hop("origin", method, "/items/", "the item"),
                    ],
                    "{path:?} {method} through {status}"
                );
                let last = log.last().unwrap();
                assert_eq!(last.header("content-type"), Some("text/plain"));
                assert!(
                    last.header("authorization").is_some(),
                    "same origin: the token"
                );
            }
        }
    }
}

#[test]
fn post_becomes_a_get_without_body_through_302_and_303_on_every_path() {
    let servers = Servers::start();
    for path in PATHS {
        let s = session(&servers, path, &[]);
        for status in ["302", "303"] {
            let target = format!("/hop/{status}/orders/42");
            let r = send(
                &s,
                path,
                "POST",
                &target,
                &["Content-Type: application/json"],
                b"{\"n\":1}",
            )
            .unwrap();
            assert_eq!(r.status, 200);
            let log = servers.take_log();
            assert_eq!(
                hops(&log),
                vec![
                    hop("origin", "POST", &target, "{\"n\":1}"),
                    hop("origin", "GET", "/orders/42", ""),
                ],
                "{path:?} POST through {status}"
            );
            let get = log.last().unwrap();
            assert_eq!(
                get.header("content-type"),
                None,
                "the body's headers go with it"
            );
            assert_eq!(get.header("content-length").unwrap_or("0"), "0");
        }
        // 303 turns a PUT into a GET too; 301 leaves it a PUT (tested above).
        send(&s, path, "PUT", "/hop/303/done", &[], b"x").unwrap();
        assert_eq!(
            hops(&servers.take_log())[1],
            hop("origin", "GET", "/done", "")
        );
    }
}

#[test]
fn a_401_after_a_303_resends_the_get_and_never_the_post_on_every_path() {
    for path in PATHS {
        // /refuses-first-token/ refuses tok-1: a recorder per path, so each session's first
        // token is tok-1.
        let servers = Servers::start();
        let s2 = session(&servers, path, &[]);
        let r = send(
            &s2,
            path,
            "POST",
            "/hop/303/refuses-first-token/order",
            &[],
            b"buy",
        )
        .unwrap();
        assert_eq!((r.status, r.body.as_slice()), (200, &b"ok"[..]), "{path:?}");
        let log = servers.take_log();
        assert_eq!(
            hops(&log),
            vec![
                hop(
                    "origin",
                    "POST",
                    "/hop/303/refuses-first-token/order",
                    "buy"
                ),
                hop("origin", "GET", "/refuses-first-token/order", ""),
                hop("origin", "GET", "/refuses-first-token/order", ""),
            ],
            "{path:?}: one POST, the GET twice"
        );
        let gets: Vec<_> = log.iter().filter(|s| s.method == "GET").collect();
        assert_eq!(gets[0].header("authorization"), Some("Bearer tok-1"));
        assert_eq!(gets[1].header("authorization"), Some("Bearer tok-2"));
        let stats = s2.stats();
        assert_eq!(stats.unauthorized_resends, 1, "{path:?} {stats:?}");
    }
}

#[test]
fn a_stale_connection_under_the_get_after_a_303_resends_the_get_and_never_the_post() {
    for path in [Path::Direct, Path::Async, Path::Driven] {
        let servers = Servers::start();
        servers.shared.drop_second.store(true, Ordering::SeqCst);
        let s = session(&servers, path, &[]);
        s.with_token(|_| ()).unwrap();
        // The POST opens a connection and gets a 303; the GET goes out on the same connection,
        // which the server drops after reading it: the GET is sent again, on a new one.
        let r = send(&s, path, "POST", "/hop/303/orders/7", &[], b"order").unwrap();
        assert_eq!(r.status, 200, "{path:?}");
        assert_eq!(
            hops(&servers.take_log()),
            vec![
                hop("origin", "POST", "/hop/303/orders/7", "order"),
                hop("origin", "GET", "/orders/7", ""),
                hop("origin", "GET", "/orders/7", ""),
            ],
            "{path:?}"
        );
        assert_eq!(s.stats().connection_resends, 1, "{path:?}");
    }
}

#[test]
fn a_307_chain_leaving_the_origin_keeps_method_and_body_and_drops_every_credential() {
    let servers = Servers::start();
    for path in PATHS {
        for dpop in ["false", "true"] {
            let s = session(&servers, path, &[("dpop", dpop)]);
            let target = "/hop/307/hop/308/hop/307/@other/landing";
            let r = send(
                &s,
                path,
                "PUT",
                target,
                &[
                    "Cookie: session=abc",
                    "Proxy-Authorization: Basic eDp5",
                    "X-Trace: 7",
                ],
                b"payload",
            )
            .unwrap();
            assert_eq!(r.status, 200);
            let log = servers.take_log();
            assert_eq!(
                hops(&log),
                vec![
                    hop("origin", "PUT", target, "payload"),
                    hop(
                        "origin",
                        "PUT",
                        "/hop/308/hop/307/@other/landing",
                        "payload"
                    ),
                    hop("origin", "PUT", "/hop/307/@other/landing", "payload"),
                    hop("other", "PUT", "/landing", "payload"),
                ],
                "{path:?} dpop={dpop}"
            );
            let (same, other) = log.split_at(log.len() - 1);
            let mut jtis = HashSet::new();
            for hop in same.iter().filter(|s| s.path != "/token") {
                assert!(hop.header("authorization").is_some(), "{path:?}");
                assert_eq!(hop.header("cookie"), Some("session=abc"));
                if dpop == "true" {
                    assert!(
                        jtis.insert(hop.header("dpop").unwrap().to_owned()),
                        "a proof per hop"
                    );
                }
            }
            let other = &other[0];
            for name in ["authorization", "cookie", "proxy-authorization", "dpop"] {
                assert_eq!(
                    other.header(name),
                    None,
                    "{path:?} dpop={dpop}: {name} left the origin"
                );
            }
            assert_eq!(other.header("x-trace"), Some("7"));
        }
    }
}

#[test]
fn a_token_request_reset_after_it_was_read_is_resent_with_a_new_assertion_and_proof() {
    let servers = Servers::start();
    for path in [Path::Direct, Path::Proxy, Path::Async] {
        let s = session(
            &servers,
            path,
            &[
                ("auth_method", "client_secret_jwt"),
                ("dpop", "true"),
                ("max_retries", "0"),
            ],
        );
        servers.shared.reset_token.store(true, Ordering::SeqCst);
        let token = match path {
            Path::Async => {
                let (tx, rx) = mpsc::channel();
                let _op = s
                    .token_async(move |t| {
                        let _ = tx.send(t);
                    })
                    .unwrap();
                rx.recv_timeout(Duration::from_secs(30)).unwrap()
            }
            _ => s.with_token(str::to_owned),
        };
        assert!(token.unwrap().starts_with("tok-"), "{path:?}");
        let posts: Vec<Seen> = servers
            .take_log()
            .into_iter()
            .filter(|s| s.path == "/token")
            .collect();
        assert_eq!(posts.len(), 2, "{path:?}: the reset one and its resend");
        let jti = |s: &Seen, what: &str| -> String {
            let jws = match what {
                "assertion" => {
                    let form = String::from_utf8_lossy(&s.body).into_owned();
                    form.split('&')
                        .find_map(|kv| kv.strip_prefix("client_assertion=").map(str::to_owned))
                        .unwrap()
                }
                _ => s.header("dpop").unwrap().to_owned(),
            };
            let claims = jws.split('.').nth(1).unwrap();
            let json = base64_url(claims);
            let v: serde_json::Value = serde_json::from_slice(&json).unwrap();
            v["jti"].as_str().unwrap().to_owned()
        };
        for what in ["assertion", "proof"] {
            assert_ne!(
                jti(&posts[0], what),
                jti(&posts[1], what),
                "{path:?}: {what} jti reused"
            );
        }
        let stats = s.stats();
        assert_eq!(
            (stats.connection_resends, stats.token_failures),
            (1, 0),
            "{path:?}"
        );
    }
}

fn base64_url(text: &str) -> Vec<u8> {
    let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = Vec::new();
    let (mut acc, mut bits) = (0u32, 0);
    for c in text.bytes() {
        let Some(v) = alphabet.iter().position(|&a| a == c) else {
            continue;
        };
        acc = (acc << 6) | v as u32;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    out
}

#[test]
fn a_redirect_chain_slower_than_timeout_ms_times_out_within_the_bound_on_every_path() {
    let servers = Servers::start();
    for path in PATHS {
        let s = session(&servers, path, &[("timeout_ms", "1000")]);
        s.with_token(|_| ()).unwrap();
        // Three hops of 400 ms each: every one well within timeout_ms, the chain not.
        let started = Instant::now();
        let err = send(
            &s,
            path,
            "GET",
            "/slow/400/hop/302/slow/400/hop/302/slow/400/done",
            &[],
            b"",
        )
        .unwrap_err();
        let took = started.elapsed();
        assert_eq!(
            err.code,
            Code::CLOUDAUTH_ERR_TIMEOUT,
            "{path:?}: {}",
            err.message
        );
        assert!(
            took >= Duration::from_millis(950) && took < Duration::from_millis(2500),
            "{path:?}: {took:?}"
        );
        servers.take_log();
    }
}

#[test]
fn the_redirect_limit_is_ten_requests_on_every_path() {
    let servers = Servers::start();
    let chain: String = "/hop/302".repeat(12) + "/end";
    for path in PATHS {
        let s = session(&servers, path, &[]);
        let err = send(&s, path, "GET", &chain, &[], b"").unwrap_err();
        assert_eq!(err.code, Code::CLOUDAUTH_ERR_NETWORK, "{path:?}");
        assert!(err.message.contains("redirects"), "{}", err.message);
        assert_eq!(hops(&servers.take_log()).len(), 10, "{path:?}");
        // Nine redirects are followed.
        let nine: String = "/hop/302".repeat(9) + "/end";
        assert_eq!(send(&s, path, "GET", &nine, &[], b"").unwrap().status, 200);
        servers.take_log();
    }
}

/// Open connections to `which`, once they settle at or below `at_most` (within 5 s).
fn settles(servers: &Servers, which: &str, at_most: i64) -> i64 {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let open = servers.open(which);
        if open <= at_most || Instant::now() > deadline {
            return open;
        }
        thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn after_300_concurrent_requests_the_pools_close_what_stays_idle() {
    // The documented idle time (docs/runtime.md: 50 s), for real: 300 requests at once from
    // the library threads on the direct connection (and 150 more through the proxy, reqwest's
    // pool), then 60 s of one request at a time on each.
    let servers = Servers::start();
    let direct = session(&servers, Path::Async, &[]);
    let proxied = session(&servers, Path::Proxy, &[]);
    direct.with_token(|_| ()).unwrap();
    proxied.with_token(|_| ()).unwrap();
    let (tx, rx) = mpsc::channel();
    for (s, n) in [(&direct, 300), (&proxied, 150)] {
        for _ in 0..n {
            let tx = tx.clone();
            let _op = s
                .request_async("GET", "/slow/300/burst", [], b"", move |r| {
                    let _ = tx.send(r.map(|r| r.status));
                })
                .unwrap();
        }
    }
    for _ in 0..450 {
        assert_eq!(
            rx.recv_timeout(Duration::from_secs(60)).unwrap().unwrap(),
            200
        );
    }
    // At most 256 idle per origin and pool are kept (docs/runtime.md); the rest closed.
    let origin = settles(&servers, "origin", 256 + 2);
    let proxy = servers.open("proxy");
    assert!(
        (100..=258).contains(&origin),
        "direct pool after the burst: {origin}"
    );
    assert!(
        proxy >= 100,
        "the burst opened connections to the proxy: {proxy}"
    );
    servers.take_log();
    let until = Instant::now() + Duration::from_secs(60);
    while Instant::now() < until {
        for s in [&direct, &proxied] {
            let (tx, rx) = mpsc::channel();
            let _op = s
                .request_async("GET", "/one", [], b"", move |r| {
                    let _ = tx.send(r.map(|r| r.status));
                })
                .unwrap();
            assert_eq!(
                rx.recv_timeout(Duration::from_secs(30)).unwrap().unwrap(),
                200
            );
        }
        thread::sleep(Duration::from_millis(250));
    }
    // A handful: the connection in use, the token's, the proxy's upstream for the last one.
    let origin = settles(&servers, "origin", 4);
    let proxy = settles(&servers, "proxy", 3);
    assert!(
        origin <= 4 && proxy <= 3,
        "still open: origin {origin}, proxy {proxy}"
    );
}

#[test]
fn a_freed_sessions_connections_close_on_every_thread_at_its_next_call() {
    for path in [Path::Direct, Path::Proxy] {
        let freed = Servers::start();
        let kept = Servers::start();
        let a = Mutex::new(Some(session(&freed, path, &[])));
        let b = session(&kept, path, &[]);
        a.lock()
            .unwrap()
            .as_ref()
            .unwrap()
            .with_token(|_| ())
            .unwrap();
        b.with_token(|_| ()).unwrap();
        let (go, wait) = (
            Arc::new(std::sync::Barrier::new(5)),
            Arc::new(std::sync::Barrier::new(5)),
        );
        thread::scope(|scope| {
            for _ in 0..4 {
                let (a, b, go, wait) = (&a, &b, go.clone(), wait.clone());
                scope.spawn(move || {
                    let sent = send(
                        a.lock().unwrap().as_ref().unwrap(),
                        path,
                        "GET",
                        "/one",
                        &[],
                        b"",
                    );
                    sent.unwrap();
                    send(b, path, "GET", "/one", &[], b"").unwrap();
                    go.wait();
                    wait.wait(); // `a` is freed meanwhile
                    send(b, path, "GET", "/one", &[], b"").unwrap();
                });
            }
            go.wait();
            let which = if let Path::Proxy = path {
                "proxy"
            } else {
                "origin"
            };
            assert!(freed.open(which) >= 4, "{path:?}: each thread keeps one");
            // What cloudauth_session_free does.
            drop(a.lock().unwrap().take());
            wait.wait();
        });
        let which = if let Path::Proxy = path {
            "proxy"
        } else {
            "origin"
        };
        let open = settles(&freed, which, 1);
        // The token connection belongs to this thread, which makes its next call now.
        send(&b, path, "GET", "/one", &[], b"").unwrap();
        let open_after = settles(&freed, which, 0);
        assert!(
            open <= 1 && open_after == 0,
            "{path:?}: {open} then {open_after} still open"
        );
    }
}
