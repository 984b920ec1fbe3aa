//! Kept-alive connections the server closes under a request (idle-timeout load balancers do
//! it): an idempotent request and the token request are sent once more on a new connection, a
//! POST is not (its bytes left), and the caller sees no error. The server here is ours, on
//! 127.0.0.1, and stops by itself (its accept loop has a deadline).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::thread;
use std::time::{Duration, Instant};

#[derive(Clone, Copy, PartialEq)]
enum Mode {
    /// Answers keep-alive (no `Connection: close`), then closes at once: the next request on
    /// that connection races the close.
    CloseAfterEveryAnswer,
    /// Answers the first request of each connection, reads the second whole and closes without
    /// a word: the stale case, every time.
    DropTheSecondRequest,
}

#[derive(Default)]
struct Seen {
    token_posts: AtomicU64,
    api_gets: AtomicU64,
    api_posts: AtomicU64,
    connections: AtomicU64,
}

struct Server {
    port: u16,
    seen: Arc<Seen>,
}

impl Server {
    /// Serves for at most `life`, then stops accepting (its connection threads end with their
    /// sockets).
    fn start(mode: Mode, life: Duration) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let seen = Arc::new(Seen::default());
        let counts = seen.clone();
        thread::spawn(move || {
            let deadline = Instant::now() + life;
            while Instant::now() < deadline {
                match listener.accept() {
                    Ok((stream, _)) => {
                        counts.connections.fetch_add(1, Ordering::Relaxed);
                        let counts = counts.clone();
                        thread::spawn(move || serve(stream, mode, &counts));
                    }
                    Err(_) => thread::sleep(Duration::from_millis(1)),
                }
            }
        });
        Server { port, seen }
    }

    fn session(&self, extra: &[(&str, &str)]) -> cloudauth::Session {
        let mut cfg = cloudauth::Config::default();
        cfg.set("client_id", "id").unwrap();
        cfg.set("client_secret", "secret").unwrap();
        let base = format!("http://127.0.0.1:{}", self.port);
        cfg.set("token_url", &format!("{base}/token")).unwrap();
        cfg.set("base_url", &base).unwrap();
        cfg.set("timeout_ms", "10000").unwrap();
        for (k, v) in extra {
            cfg.set(k, v).unwrap();
        }
        cloudauth::Session::new(&cfg).unwrap()
    }
}

/// One request: its method and path; `None` when the client closed the connection.
fn read_request(reader: &mut BufReader<TcpStream>) -> Option<(String, String)> {
    let mut line = String::new();
    reader.read_line(&mut line).ok().filter(|&n| n > 0)?;
    let mut parts = line.split_whitespace();
    let (method, path) = (parts.next()?.to_owned(), parts.next()?.to_owned());
    let mut length = 0usize;
    loop {
        let mut header = String::new();
        reader.read_line(&mut header).ok().filter(|&n| n > 0)?;
        if header == "\r\n" {
            break;
        }
        if let Some((name, value)) = header.split_once(':') {
            if name.eq_ignore_ascii_case("content-length") {
                length = value.trim().parse().ok()?;
            }
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).ok()?;
    Some((method, path))
}

fn serve(stream: TcpStream, mode: Mode, seen: &Seen) {
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let mut writer = stream.try_clone().unwrap();
    let mut reader = BufReader::new(stream);
    for nth in 0.. {
        let Some((method, path)) = read_request(&mut reader) else {
            return;
        };
        let counter = match (method.as_str(), path.as_str()) {
            ("POST", "/token") => &seen.token_posts,
            ("POST", _) => &seen.api_posts,
            _ => &seen.api_gets,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        if mode == Mode::DropTheSecondRequest && nth == 1 {
            let _ = writer.shutdown(Shutdown::Both);
            return;
        }
        let body = if path == "/token" {
            r#"{"access_token":"tok","expires_in":3600,"token_type":"Bearer"}"#
        } else {
            "ok"
        };
        let answer = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        if writer.write_all(answer.as_bytes()).is_err() {
            return;
        }
        if mode == Mode::CloseAfterEveryAnswer {
            let _ = writer.shutdown(Shutdown::Both);
            return;
        }
    }
}

fn get_ok(s: &cloudauth::Session) {
    let r = s.request("GET", "/api", [], b"").unwrap();
    assert_eq!((r.status, r.body.as_slice()), (200, &b"ok"[..]));
}

/// Every resend is counted; the server saw each answered GET, and at most every one sent (a
/// request written into a connection the server had already closed never reaches it).
fn assert_sent(server: &Server, s: &cloudauth::Session, answered: u64) {
    let stats = s.stats();
    assert_eq!(stats.api_requests, answered + stats.connection_resends);
    let seen = server.seen.api_gets.load(Ordering::Relaxed);
    assert!(
        (answered..=stats.api_requests).contains(&seen),
        "{seen} {stats:?}"
    );
}

#[test]
fn a_thousand_sequential_gets_over_connections_closed_after_every_answer_all_succeed() {
    let server = Server::start(Mode::CloseAfterEveryAnswer, Duration::from_secs(120));
    let s = server.session(&[]);
    for _ in 0..1000 {
        get_ok(&s);
    }
    assert_sent(&server, &s, 1000);
}

#[test]
fn two_hundred_gets_from_eight_threads_over_connections_closed_after_every_answer_all_succeed() {
    let server = Server::start(Mode::CloseAfterEveryAnswer, Duration::from_secs(120));
    let s = server.session(&[]);
    thread::scope(|scope| {
        for _ in 0..8 {
            scope.spawn(|| {
                for _ in 0..25 {
                    get_ok(&s);
                }
            });
        }
    });
    assert_sent(&server, &s, 200);
}

#[test]
fn a_get_on_a_connection_dropped_under_it_is_resent_once_on_a_new_one() {
    let server = Server::start(Mode::DropTheSecondRequest, Duration::from_secs(60));
    let s = server.session(&[]);
    get_ok(&s); // a token POST and this GET: one connection each
    get_ok(&s); // reuses the GET's connection, which the server drops: resent
    let stats = s.stats();
    assert_eq!(stats.connection_resends, 1, "{stats:?}");
    assert_eq!(stats.api_requests, 3, "{stats:?}");
    assert_eq!(server.seen.api_gets.load(Ordering::Relaxed), 3);
    assert_eq!(server.seen.connections.load(Ordering::Relaxed), 3);
}

#[test]
fn a_post_whose_bytes_left_is_not_resent() {
    let server = Server::start(Mode::DropTheSecondRequest, Duration::from_secs(60));
    let s = server.session(&[]);
    get_ok(&s);
    let err = s.request("POST", "/api", [], b"{}").unwrap_err();
    assert_eq!(err.code, cloudauth::Code::CLOUDAUTH_ERR_NETWORK, "{err}");
    assert!(
        err.message.starts_with("request to http://127.0.0.1:"),
        "{err}"
    );
    assert_eq!(server.seen.api_posts.load(Ordering::Relaxed), 1);
    assert_eq!(s.stats().connection_resends, 0);
    // The next POST goes out on a new connection and is answered.
    let r = s.request("POST", "/api", [], b"{}").unwrap();
    assert_eq!(r.status, 200);
}

#[test]
fn a_token_request_on_a_connection_dropped_under_it_is_resent_once() {
    let server = Server::start(Mode::DropTheSecondRequest, Duration::from_secs(60));
    // Inline: both fetches on this thread, over its one token connection.
    let s = server.session(&[("refresh_mode", "inline"), ("max_retries", "0")]);
    assert_eq!(s.with_token(str::to_owned).unwrap(), "tok");
    s.invalidate();
    assert_eq!(s.with_token(str::to_owned).unwrap(), "tok");
    let stats = s.stats();
    assert_eq!((stats.connection_resends, stats.token_failures), (1, 0));
    assert_eq!(stats.token_requests, 3, "{stats:?}");
    assert_eq!(server.seen.token_posts.load(Ordering::Relaxed), 3);
}

#[test]
fn async_gets_on_connections_dropped_under_them_are_resent() {
    let server = Server::start(Mode::DropTheSecondRequest, Duration::from_secs(60));
    let s = server.session(&[]);
    for _ in 0..6 {
        let (tx, rx) = mpsc::channel();
        let _op = s
            .request_async("GET", "/api", [], b"", move |r| {
                let _ = tx.send(r.map(|r| (r.status, r.body)));
            })
            .unwrap();
        let answer = rx.recv_timeout(Duration::from_secs(30)).unwrap().unwrap();
        assert_eq!(answer, (200, b"ok".to_vec()));
    }
    // Every second use of a connection is dropped: of six GETs, at least two went out on a
    // reused connection (the library client pools one between these sequential requests).
    let stats = s.stats();
    assert!(stats.connection_resends >= 2, "{stats:?}");
    assert_eq!(stats.api_requests, 6 + stats.connection_resends);
}
