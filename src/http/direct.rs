//! HTTP/1.1 on hyper's connection API, for requests to the session's own origin (`base_url`'s):
//! the path nearly every request takes, so the one issue 18 measured.
//!
//! reqwest runs each connection in a task of its own, so a request crosses between two tasks
//! twice (head, then body), and each crossing costs Tokio a round of its I/O driver (an
//! `epoll_wait`); it also parses the URL again in its redirect layer and hashes into its pool.
//! Here the request's own task drives its connection, and the pool is a stack of idle
//! connections.
//!
//! It carries one hop of an exchange; the redirect chain, the deadline and the resends belong to
//! `pipeline`, which hands every other hop (other origins, proxies, mutual TLS, the token
//! endpoint) to reqwest (`clients`).

use crate::http::body::Outgoing;
use crate::http::socket::Socket;
use bytes::Bytes;
use hyper::body::{Body, Incoming};
use hyper::client::conn::http1::{self, Connection, SendRequest};
use hyper_util::rt::TokioIo;
use reqwest::header::{HeaderMap, HeaderValue, ACCEPT, HOST, USER_AGENT};
use reqwest::{Method, StatusCode};
use rustls::pki_types::ServerName;
use std::future::{poll_fn, Future};
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::Sleep;
use url::{Host, Position, Url};

/// Shorter than common server keep-alive timeouts (nginx: 75 s), as for reqwest's pool: a
/// connection is retired by us before the server closes it under a request.
pub const IDLE_LIMIT: Duration = Duration::from_secs(50);
/// A connection idle this long is first given one turn of the I/O driver, so a close the
/// server sent meanwhile is seen before the request goes out on it (the resend in
/// `transport` covers one that closes later still).
const LOOK_AFTER: Duration = Duration::from_secs(1);
/// Idle connections kept per pool (one origin, one runtime); more in flight at once are closed
/// when they finish. As many as the largest burst the benchmarks run (256 in flight).
pub const MAX_IDLE: usize = 256;

/// One origin's connections, and how to open more.
pub struct Direct {
    https: bool,
    host: Host<String>,
    port: u16,
    host_header: HeaderValue,
    tls: Option<(tokio_rustls::TlsConnector, ServerName<'static>)>,
    connect_timeout: Duration,
    user_agent: HeaderValue,
    /// `None`: keeps no connection (a resend's clients, `Transport::fresh_clients`).
    /// Oldest first: a connection is taken from the top (the warmest) and retired from the
    /// bottom once idle for [`IDLE_LIMIT`], wherever it sits.
    /// Boxed: a connection is moved in and out of here and of every answer, and is large.
    #[allow(clippy::vec_box)]
    idle: Option<Mutex<Vec<Box<Link>>>>,
}

/// What a [`Direct`] is built from.
pub struct Setup<'a> {
    pub origin: &'a Url,
    pub tls: &'a rustls::ClientConfig,
    pub connect_timeout: Duration,
    pub user_agent: &'a str,
    pub keep_idle: bool,
}

type Conn = Connection<TokioIo<Stream>, Outgoing>;

/// One connection: the handle requests go in by, and the connection itself, which the
/// request's task polls alongside it.
struct Link {
    send: SendRequest<Outgoing>,
    conn: Conn,
    /// The connection future has finished (closed, or failed): it must not be polled again.
    ended: bool,
    idle_since: Instant,
}

/// A response head, and what reading its body needs.
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    body: Incoming,
    /// Until the body's end, when it goes back to the pool.
    link: Option<Box<Link>>,
    deadline: Pin<Box<Sleep>>,
    home: Arc<Direct>,
}

/// A send or a read that failed, and at which step.
#[derive(Debug)]
pub struct Failure {
    step: &'static str,
    pub(crate) timed_out: bool,
    /// The connection could not be opened: nothing was sent.
    pub(crate) connecting: bool,
    source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl Direct {
    /// `None` when the origin is not an http(s) one with a host (nothing else is ever sent).
    pub fn new(setup: Setup<'_>) -> Option<Direct> {
        let origin = setup.origin;
        let https = match origin.scheme() {
            "https" => true,
            "http" => false,
            _ => return None,
        };
        let host = origin.host()?.to_owned();
        let port = origin.port_or_known_default()?;
        let host_header = match origin.port() {
            Some(port) => HeaderValue::from_str(&format!("{}:{port}", origin.host_str()?)),
            None => HeaderValue::from_str(origin.host_str()?),
        }
        .ok()?;
        let tls = if https {
            let name = match &host {
                Host::Domain(d) => ServerName::try_from(d.clone()).ok()?,
                Host::Ipv4(ip) => ServerName::IpAddress((*ip).into()),
                Host::Ipv6(ip) => ServerName::IpAddress((*ip).into()),
            };
            Some((Arc::new(setup.tls.clone()).into(), name))
        } else {
            None
        };
        Some(Direct {
            https,
            host,
            port,
            host_header,
            tls,
            connect_timeout: setup.connect_timeout,
            user_agent: HeaderValue::from_str(setup.user_agent).ok()?,
            idle: setup.keep_idle.then(|| Mutex::new(Vec::new())),
        })
    }

    /// Whether `url` is on this origin (compared without building `Url::origin`, which
    /// allocates).
    pub fn serves(&self, url: &Url) -> bool {
        url.scheme() == if self.https { "https" } else { "http" }
            && url.port_or_known_default() == Some(self.port)
            && match (&self.host, url.host()) {
                (Host::Domain(a), Some(Host::Domain(b))) => a == b,
                (Host::Ipv4(a), Some(Host::Ipv4(b))) => *a == b,
                (Host::Ipv6(a), Some(Host::Ipv6(b))) => *a == b,
                _ => false,
            }
    }

    /// Sends the request and reads the response head, all before `deadline` (the exchange's);
    /// the body is read by [`Answer::chunk`] under the same deadline. `url` must be one this
    /// origin [`serves`](Self::serves).
    pub async fn send(
        self: &Arc<Self>,
        method: Method,
        url: &Url,
        mut headers: HeaderMap,
        body: Outgoing,
        deadline: Instant,
    ) -> Result<Answer, Failure> {
        let mut deadline = Box::pin(tokio::time::sleep_until(deadline.into()));
        let mut link = self.ready_link(&mut deadline).await?;
        // Origin-form: the path and query (a URL's path always starts with '/').
        let target = &url[Position::BeforePath..Position::AfterQuery];
        let uri = hyper::Uri::try_from(target).map_err(|e| Failure::new("request", e))?;
        // Each only when the caller gave none, as reqwest (and hyper's pool client) add them.
        if !headers.contains_key(HOST) {
            headers.insert(HOST, self.host_header.clone());
        }
        if !headers.contains_key(USER_AGENT) {
            headers.insert(USER_AGENT, self.user_agent.clone());
        }
        if !headers.contains_key(ACCEPT) {
            headers.insert(ACCEPT, HeaderValue::from_static("*/*"));
        }
        let mut request = hyper::Request::new(body);
        *request.method_mut() = method;
        *request.uri_mut() = uri;
        *request.headers_mut() = headers;
        let mut pending = std::pin::pin!(link.send.send_request(request));
        let head = link
            .drive(&mut deadline, |cx, _| pending.as_mut().poll(cx))
            .await?
            .map_err(|e| Failure::new("sending the request", e))?;
        let (parts, body) = head.into_parts();
        Ok(Answer {
            status: parts.status,
            headers: parts.headers,
            body,
            link: Some(link),
            deadline,
            home: Arc::clone(self),
        })
    }

    /// A connection ready for a request: an idle one that is still open, or a new one.
    async fn ready_link(&self, deadline: &mut Pin<Box<Sleep>>) -> Result<Box<Link>, Failure> {
        while let Some(mut link) = self.take_idle() {
            if link.idle_since.elapsed() >= LOOK_AFTER {
                tokio::task::yield_now().await;
            }
            if let Ok(Ok(())) = link.drive(deadline, |cx, send| send.poll_ready(cx)).await {
                if !link.ended {
                    return Ok(link);
                }
            }
        }
        // Boxed: opening a connection is the rare case, and its future (a TLS handshake's
        // state among it) would otherwise sit in every request's future, copied with it.
        let connect = Box::pin(tokio::time::timeout(self.connect_timeout, self.connect()));
        match within(deadline, connect).await {
            Some(Ok(link)) => link,
            Some(Err(_)) => Err(Failure {
                step: "connect",
                timed_out: true,
                connecting: true,
                source: Some(
                    format!(
                        "no connection within {} ms",
                        self.connect_timeout.as_millis()
                    )
                    .into(),
                ),
            }),
            None => Err(Failure::timeout("connect")),
        }
    }

    fn take_idle(&self) -> Option<Box<Link>> {
        let mut idle = self.idle.as_ref()?.lock().ok()?;
        retire(&mut idle, Instant::now());
        while let Some(link) = idle.pop() {
            if !link.send.is_closed() {
                return Some(link);
            }
        }
        None
    }

    fn put_back(&self, mut link: Box<Link>) {
        if link.ended || link.send.is_closed() {
            return;
        }
        if let Some(Ok(mut idle)) = self.idle.as_ref().map(Mutex::lock) {
            // Read under the lock: the stack stays ordered by idle time.
            let now = Instant::now();
            retire(&mut idle, now);
            if idle.len() < MAX_IDLE {
                link.idle_since = now;
                idle.push(link);
            }
        }
    }

    async fn connect(&self) -> Result<Box<Link>, Failure> {
        let tcp = match &self.host {
            Host::Domain(name) => TcpStream::connect((name.as_str(), self.port)).await,
            Host::Ipv4(ip) => TcpStream::connect((*ip, self.port)).await,
            Host::Ipv6(ip) => TcpStream::connect((*ip, self.port)).await,
        }
        .map_err(|e| Failure::connecting("connect", e))?;
        tcp.set_nodelay(true)
            .map_err(|e| Failure::connecting("connect", e))?;
        let stream = match &self.tls {
            None => Stream::Plain(Socket(tcp)),
            Some((connector, name)) => Stream::Tls(Box::new(
                connector
                    .connect(name.clone(), Socket(tcp))
                    .await
                    .map_err(|e| Failure::connecting("TLS handshake", e))?,
            )),
        };
        let (send, conn) = http1::Builder::new()
            .handshake(TokioIo::new(stream))
            .await
            .map_err(|e| Failure::connecting("connect", e))?;
        Ok(Box::new(Link {
            send,
            conn,
            ended: false,
            idle_since: Instant::now(),
        }))
    }
}

/// Closes the connections idle for [`IDLE_LIMIT`] or more: the bottom of the stack, which is
/// ordered oldest first.
#[allow(clippy::vec_box)]
fn retire(idle: &mut Vec<Box<Link>>, now: Instant) {
    let Some(cutoff) = now.checked_sub(IDLE_LIMIT) else {
        return;
    };
    let expired = idle.partition_point(|l| l.idle_since <= cutoff);
    if expired > 0 {
        idle.drain(..expired);
    }
}

impl Link {
    /// Polls `step` until it is ready, driving the connection (its reads and writes) on the
    /// way; `None` from the deadline's side is a timeout.
    async fn drive<T>(
        &mut self,
        deadline: &mut Pin<Box<Sleep>>,
        mut step: impl FnMut(&mut Context<'_>, &mut SendRequest<Outgoing>) -> Poll<T>,
    ) -> Result<T, Failure> {
        poll_fn(|cx| {
            if !self.ended && Pin::new(&mut self.conn).poll(cx).is_ready() {
                // Closed or failed; what the request sees of it comes through `step`.
                self.ended = true;
            }
            if let Poll::Ready(out) = step(cx, &mut self.send) {
                return Poll::Ready(Ok(out));
            }
            match deadline.as_mut().poll(cx) {
                Poll::Ready(()) => Poll::Ready(Err(Failure::timeout("request"))),
                Poll::Pending => Poll::Pending,
            }
        })
        .await
    }
}

/// `work`, unless the deadline comes first (`None`).
async fn within<T>(deadline: &mut Pin<Box<Sleep>>, work: impl Future<Output = T>) -> Option<T> {
    let mut work = std::pin::pin!(work);
    poll_fn(|cx| {
        if let Poll::Ready(out) = work.as_mut().poll(cx) {
            return Poll::Ready(Some(out));
        }
        deadline.as_mut().poll(cx).map(|()| None)
    })
    .await
}

impl Answer {
    /// The declared length of the body, if the server gave one.
    pub fn content_length(&self) -> Option<u64> {
        self.body.size_hint().exact()
    }

    /// The next piece of the body, `None` at its end; after the end the connection goes back
    /// to the pool.
    pub async fn chunk(&mut self) -> Result<Option<Bytes>, Failure> {
        loop {
            let Some(link) = self.link.as_mut() else {
                return Ok(None);
            };
            let body = &mut self.body;
            let frame = link
                .drive(&mut self.deadline, |cx, _| {
                    Pin::new(&mut *body).poll_frame(cx)
                })
                .await?;
            match frame {
                None => {
                    if let Some(link) = self.link.take() {
                        self.home.put_back(link);
                    }
                    return Ok(None);
                }
                Some(Err(e)) => return Err(Failure::new("reading the response", e)),
                Some(Ok(frame)) => {
                    if let Ok(data) = frame.into_data() {
                        return Ok(Some(data));
                    }
                    // Trailers: nothing to hand back.
                }
            }
        }
    }
}

impl Failure {
    fn new(step: &'static str, e: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Failure {
        Failure {
            step,
            timed_out: false,
            connecting: false,
            source: Some(e.into()),
        }
    }

    fn connecting(
        step: &'static str,
        e: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Failure {
        Failure {
            connecting: true,
            ..Failure::new(step, e)
        }
    }

    fn timeout(step: &'static str) -> Failure {
        Failure {
            step,
            timed_out: true,
            connecting: false,
            source: None,
        }
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.step)?;
        if self.timed_out && self.source.is_none() {
            return f.write_str(": operation timed out");
        }
        // The causes on one line, each once.
        let mut shown = String::new();
        let mut cause: Option<&(dyn std::error::Error + 'static)> = self
            .source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static));
        while let Some(e) = cause {
            let text = e.to_string();
            if !shown.contains(&text) {
                write!(f, ": {text}")?;
                shown.push_str(&text);
            }
            cause = e.source();
        }
        Ok(())
    }
}

impl std::error::Error for Failure {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

/// A connection's byte stream: plain TCP or TLS over it.
enum Stream {
    Plain(Socket),
    Tls(Box<tokio_rustls::client::TlsStream<Socket>>),
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    // Forwarded, so that hyper writes a body's pieces as they are (one `writev` with the head)
    // instead of copying them into its own buffer first.
    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Stream::Plain(s) => s.is_write_vectored(),
            Stream::Tls(s) => s.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::clients::Clients;

    fn direct(origin: &str) -> Option<Direct> {
        let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(rustls::RootCertStore::empty())
        .with_no_client_auth();
        Direct::new(Setup {
            origin: &origin.parse().unwrap(),
            tls: &tls,
            connect_timeout: Duration::from_secs(1),
            user_agent: "t",
            keep_idle: true,
        })
    }

    /// A future is moved whole (into `block_on`, into a task), so its size is paid in
    /// `memcpy` on every request: an unboxed connection in it once made a GET cost 127,575
    /// instructions instead of 37,570 (`bench/callgrind_get.sh`).
    #[test]
    fn what_every_request_moves_stays_small() {
        let clients = Clients {
            any: reqwest::Client::new(),
            bound: None,
            direct: direct("http://127.0.0.1:9/").map(Arc::new),
        };
        let url: Url = "http://127.0.0.1:9/x".parse().unwrap();
        let body = crate::http::body::Payload::empty();
        let sending = clients.send_hop(
            crate::http::clients::Route {
                role: crate::http::clients::Role::Api,
                left: false,
            },
            &Method::GET,
            &url,
            HeaderMap::new(),
            &body,
            Instant::now(),
        );
        let size = std::mem::size_of_val(&sending);
        assert!(size <= 512, "Clients::send_hop's future is {size} bytes");
        let answer = std::mem::size_of::<Answer>();
        assert!(answer <= 256, "an answer is {answer} bytes");
    }

    #[test]
    fn only_the_same_scheme_host_and_port_are_served() {
        let serves = |d: &Direct, url: &str| d.serves(&url.parse().unwrap());
        let d = direct("https://api.example.com/v5.0/").unwrap();
        assert!(serves(&d, "https://api.example.com/other?q=1"));
        assert!(serves(&d, "https://api.example.com:443/x"));
        assert!(!serves(&d, "http://api.example.com/x"));
        assert!(!serves(&d, "https://api.example.com:8443/x"));
        assert!(!serves(&d, "https://example.com/x"));
        assert!(!serves(&d, "https://api.example.com.evil/x"));
        let d = direct("http://[::1]:8080").unwrap();
        assert!(serves(&d, "http://[::1]:8080/x"));
        assert!(!serves(&d, "http://127.0.0.1:8080/x"));
        assert_eq!(d.host_header, "[::1]:8080");
        assert_eq!(
            direct("https://h.example/").unwrap().host_header,
            "h.example"
        );
        assert!(direct("ftp://h.example/").is_none());
    }
}
