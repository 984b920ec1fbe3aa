//! The one send. Every HTTP exchange (API requests on every runtime, token requests, discovery)
//! goes through [`Transport::send`], whatever carries each hop (`clients`: the direct
//! connection, reqwest through a proxy, the client-certificate client). It owns, for all of
//! them:
//!
//! - the redirect chain (RFC 9110 §15.4): 301/302 turn only POST into GET, 303 everything but
//!   HEAD, 307/308 keep method and body; a GET made from a request drops its body and the
//!   body's `Content-*` headers. A hop off the first hop's origin strips `Authorization`,
//!   `Cookie`, `Proxy-Authorization` and `DPoP` for the rest of the chain, and presents no
//!   client certificate. At most [`MAX_HOPS`] requests per chain; schemes other than http(s)
//!   end the chain (the caller gets the 3xx), plain http to a remote host is refused;
//! - the deadline: `timeout_ms` from the exchange's start bounds every hop, every resend and
//!   the body;
//! - the resends: a hop whose connection failed under it is sent once more on a new
//!   connection (idempotent methods, or when its bytes never left); a hop answered 401 after
//!   it carried the token is sent again, itself and not the request that began the chain, once
//!   the caller has a fresh token ([`Step::Rejected`]); a DPoP nonce challenge gets one resend.
//!   A body read from the caller's source goes again only once rewound (`body`): one that
//!   cannot be is sent once, and the 401, the 307/308 or the connection's failure is the answer;
//! - the per-hop headers: [`Hooks::sign`] is asked before every send, so a DPoP proof or a
//!   client assertion is never sent twice.

use crate::error::{Code, Error, Result};
use crate::http::body::Payload;
use crate::http::clients::{Answer, Clients, Role, Route};
use crate::http::request::ApiRequest;
use crate::http::transport::{connection_failure, read_body, send_error, stream_body, Transport};
use crate::http::url_policy::{follows_redirect_to, redact};
use crate::stats::Counters;
use bytes::Bytes;
use reqwest::header::{
    HeaderMap, HeaderName, AUTHORIZATION, COOKIE, LOCATION, PROXY_AUTHORIZATION, TRANSFER_ENCODING,
    WWW_AUTHENTICATE,
};
use reqwest::{Method, StatusCode};
use std::time::{Duration, Instant};
use url::Url;

/// Requests one redirect chain may send (resends of a hop not counted), on every carrier.
pub const MAX_HOPS: usize = 10;

/// The most of a redirect's body read to keep its connection.
const REDIRECT_BODY_CAP: usize = 64 << 10;

/// Headers that never follow a request to another origin (the token's, DPoP's proof, the
/// caller's cookies and proxy credentials).
const SENSITIVE: [HeaderName; 4] = [AUTHORIZATION, COOKIE, PROXY_AUTHORIZATION, WWW_AUTHENTICATE];

/// One exchange: the request, where its redirect chain stands, and its deadline. Kept by the
/// caller across a [`Step::Rejected`], so the resend continues the same chain.
pub struct Exchange<'a> {
    request: &'a ApiRequest,
    /// After a redirect: the hop now due (the request itself until then, copied never).
    hop: Option<Box<Hop>>,
    /// Requests the chain has sent, resends of one hop counted once.
    hops: usize,
    /// A hop left the first one's origin: no credentials and no certificate from then on.
    left: bool,
    /// What is left of `timeout_ms`: the clock runs while the exchange is sent, not while the
    /// caller fetches a fresh token after [`Step::Rejected`] (that fetch has its own).
    remaining: Duration,
    /// Set when a send starts: now + `remaining`.
    deadline: Instant,
    role: Role,
    /// How messages name the exchange ("request to", "token request to", …).
    step: &'static str,
}

struct Hop {
    method: Method,
    url: Url,
    headers: HeaderMap,
    body: Payload,
}

/// What the caller adds to each hop and makes of each answer.
pub trait Hooks {
    /// Adds what this send of a hop carries besides the request's headers; asked before every
    /// send (each redirect hop, each resend), so nothing signed goes twice. `credentials`:
    /// the hop is on the first hop's origin and the chain never left it. A returned body
    /// replaces the request's (a token request's form with a fresh client assertion).
    fn sign(
        &mut self,
        method: &Method,
        url: &Url,
        credentials: bool,
        headers: &mut HeaderMap,
    ) -> Option<Bytes>;

    /// The head of the answer to a hop (`credentials` as it was signed with).
    fn answered(
        &mut self,
        _url: &Url,
        _credentials: bool,
        _status: StatusCode,
        _headers: &HeaderMap,
    ) -> Verdict {
        Verdict::Accept
    }

    /// Where the final answer's body goes; `None`: read whole into the [`Reply`].
    fn sink(&mut self) -> Option<&mut dyn BodySink> {
        None
    }
}

/// Where a streamed answer goes: its head, then its body piece by piece (`cap` still bounds the
/// whole body, the deadline the whole exchange). Only the final answer of a chain reaches it: a
/// redirect or a 401 that is resent is not the caller's answer.
pub trait BodySink: Send {
    /// The final answer's status and headers, before any byte of its body.
    fn head(&mut self, status: StatusCode, headers: &HeaderMap) -> Result<()>;
    /// The next piece of the body.
    fn data(&mut self, piece: &[u8]) -> Result<()>;
}

/// What the caller makes of an answer's head.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Verdict {
    /// Go on: follow a redirect, or read the body.
    Accept,
    /// Send the same hop again now (a DPoP nonce was asked for and learned): once per send.
    ResendHop,
    /// The hop's credentials were refused (a 401 to the token): the caller gets a fresh token
    /// and sends the exchange again, which resends this hop.
    Rejected,
}

/// Nothing to add and nothing to check (discovery).
pub struct Plain;

impl Hooks for Plain {
    fn sign(&mut self, _: &Method, _: &Url, _: bool, _: &mut HeaderMap) -> Option<Bytes> {
        None
    }
}

/// How a send of an exchange ended.
pub enum Step {
    Done(Reply),
    /// See [`Verdict::Rejected`]: send the same exchange again.
    Rejected,
}

/// A whole answer: status, headers, the body (within its cap; empty when it went to a
/// [`BodySink`]).
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl<'a> Exchange<'a> {
    /// `request` as an exchange of `role` starting now, bounded by `timeout`.
    pub fn new(
        request: &'a ApiRequest,
        role: Role,
        step: &'static str,
        timeout: Duration,
    ) -> Exchange<'a> {
        Exchange {
            request,
            hop: None,
            hops: 1,
            left: false,
            remaining: timeout,
            deadline: Instant::now(),
            role,
            step,
        }
    }

    /// May the hop now due be sent again when its connection failed after its bytes left?
    /// Idempotent methods (the hop's own: a GET after a 303 is one), and the token request (a
    /// client-credentials grant changes nothing).
    fn repeatable(&self) -> bool {
        self.role == Role::TokenEndpoint || self.method().is_idempotent()
    }

    fn method(&self) -> &Method {
        self.hop
            .as_ref()
            .map_or(&self.request.method, |h| &h.method)
    }

    fn url(&self) -> &Url {
        self.hop.as_ref().map_or(&self.request.url, |h| &h.url)
    }

    fn headers(&self) -> &HeaderMap {
        self.hop
            .as_ref()
            .map_or(&self.request.headers, |h| &h.headers)
    }

    fn body(&self) -> &Payload {
        self.hop.as_ref().map_or(&self.request.body, |h| &h.body)
    }

    /// The hop a redirect answer asks for, if it is one to follow.
    fn redirect(&self, answer: &Answer, allow_insecure_http: bool) -> Result<Option<Box<Hop>>> {
        let status = answer.status();
        if !matches!(status.as_u16(), 301 | 302 | 303 | 307 | 308) {
            return Ok(None);
        }
        let Some(next) = answer
            .headers()
            .get(LOCATION)
            .and_then(|l| l.to_str().ok())
            .and_then(|l| self.url().join(l).ok())
        else {
            return Ok(None);
        };
        let shown = redact(&self.request.url);
        match follows_redirect_to(&next, allow_insecure_http) {
            Ok(true) => {}
            Ok(false) => return Ok(None),
            Err(message) => {
                return Err(Error::new(
                    Code::CLOUDAUTH_ERR_INSECURE_URL,
                    format!("{} {shown}: {message}", self.step),
                ))
            }
        }
        if self.hops >= MAX_HOPS {
            return Err(Error::new(
                Code::CLOUDAUTH_ERR_NETWORK,
                format!(
                    "{} {shown} failed: more than {} redirects",
                    self.step,
                    MAX_HOPS - 1
                ),
            ));
        }
        let mut headers = self.headers().clone();
        let method = self.method();
        // RFC 9110 §15.4.2-3 (301, 302: POST only), §15.4.4 (303: all but HEAD).
        let to_get = match status {
            StatusCode::MOVED_PERMANENTLY | StatusCode::FOUND => *method == Method::POST,
            StatusCode::SEE_OTHER => *method != Method::HEAD,
            _ => false,
        };
        let (method, body) = if to_get {
            let content: Vec<HeaderName> = headers
                .keys()
                .filter(|n| n.as_str().starts_with("content-"))
                .cloned()
                .collect();
            for name in content {
                headers.remove(name);
            }
            headers.remove(TRANSFER_ENCODING);
            (Method::GET, Payload::empty())
        } else {
            (method.clone(), self.body().clone())
        };
        if self.left || !same_origin(&next, &self.request.url) {
            for name in SENSITIVE {
                headers.remove(name);
            }
            headers.remove("dpop");
        }
        Ok(Some(Box::new(Hop {
            method,
            url: next,
            headers,
            body,
        })))
    }
}

/// Scheme, host and port equal (without building `Url::origin`, which allocates).
pub fn same_origin(a: &Url, b: &Url) -> bool {
    a.scheme() == b.scheme()
        && a.host() == b.host()
        && a.port_or_known_default() == b.port_or_known_default()
}

impl Transport {
    /// Counts a send of an API or token request (discovery's are not counted).
    fn count_sent(&self, exchange: &Exchange<'_>) {
        if exchange.role != Role::Other {
            self.count_request();
        }
    }

    /// Sends `exchange` from where it stands (its first hop, or the hop a 401 refused) and
    /// reads the final answer's body up to `cap` bytes. Counted as one request sent, and one
    /// more for each resend.
    pub async fn send(
        &self,
        clients: &Clients,
        exchange: &mut Exchange<'_>,
        hooks: &mut impl Hooks,
        cap: usize,
    ) -> Result<Step> {
        self.count_sent(exchange);
        exchange.deadline = Instant::now() + exchange.remaining;
        let mut nonce_resent = false;
        loop {
            let credentials = !exchange.left;
            let mut answer = Box::pin(self.send_hop(clients, exchange, hooks)).await?;
            let verdict = hooks.answered(
                exchange.url(),
                credentials,
                answer.status(),
                answer.headers(),
            );
            match verdict {
                Verdict::ResendHop if !nonce_resent && exchange.body().ready_to_resend() => {
                    nonce_resent = true;
                    self.count_sent(exchange);
                    continue;
                }
                // Refused, and the hop can go again (a source that cannot be rewound makes the
                // 401 the answer).
                Verdict::Rejected if exchange.body().ready_to_resend() => {
                    exchange.remaining =
                        exchange.deadline.saturating_duration_since(Instant::now());
                    return Ok(Step::Rejected);
                }
                _ => {}
            }
            if self.follows_redirects() {
                let next = exchange.redirect(&answer, self.allow_insecure_http())?;
                // A 307/308 sends the body again: a source must be rewound first, or the 3xx
                // is the answer.
                if let Some(next) = next.filter(|n| n.body.ready_to_resend()) {
                    // Read the (usually empty) body so that its connection is kept for the
                    // next hop; a large or failing one is dropped with its connection.
                    let _ =
                        read_body(answer, REDIRECT_BODY_CAP, exchange.step, exchange.url()).await;
                    exchange.left |= !same_origin(&next.url, &exchange.request.url);
                    exchange.hops += 1;
                    exchange.hop = Some(next);
                    continue;
                }
            }
            let status = answer.status();
            let headers = answer.take_headers();
            let (step, url, deadline) = (exchange.step, &exchange.request.url, exchange.deadline);
            let body = match hooks.sink() {
                Some(sink) => {
                    sink.head(status, &headers)?;
                    stream_body(answer, cap, step, url, |piece| {
                        sink.data(piece)?;
                        // The sink's time counts, and while pieces keep arriving the carrier's
                        // timer is not looked at: the deadline is checked here too.
                        if Instant::now() >= deadline {
                            return Err(Error::new(
                                Code::CLOUDAUTH_ERR_TIMEOUT,
                                format!("{step} {} timed out (reading the body)", redact(url)),
                            ));
                        }
                        Ok(())
                    })
                    .await?;
                    Vec::new()
                }
                None => read_body(answer, cap, step, url).await?,
            };
            return Ok(Step::Done(Reply {
                status,
                headers,
                body,
            }));
        }
    }

    /// One hop: signed, sent on its carrier, and sent once more on a new connection when the
    /// connection failed under it (see `Exchange::repeatable`), signed anew.
    async fn send_hop(
        &self,
        clients: &Clients,
        exchange: &Exchange<'_>,
        hooks: &mut impl Hooks,
    ) -> Result<Answer> {
        let mut fresh: Option<Clients> = None;
        loop {
            let (method, url) = (exchange.method(), exchange.url());
            let mut headers = exchange.headers().clone();
            let signed = hooks.sign(method, url, !exchange.left, &mut headers);
            let signed = signed.map(Payload::Bytes);
            let body = signed.as_ref().unwrap_or(exchange.body());
            let carrier = fresh.as_ref().unwrap_or(clients);
            let sent = carrier
                .send_hop(
                    Route {
                        role: exchange.role,
                        left: exchange.left,
                    },
                    method,
                    url,
                    headers,
                    body,
                    exchange.deadline,
                )
                .await;
            let error = match sent {
                Ok(answer) => return Ok(answer),
                Err(e) => e,
            };
            if let Some(mut failed) = body.failure() {
                // The caller's source failed the send, not the connection.
                failed.message = format!(
                    "{} {}: {}",
                    exchange.step,
                    redact(&exchange.request.url),
                    failed.message
                );
                return Err(failed);
            }
            if fresh.is_none() {
                if let Some(clients) = self
                    .fresh_clients(
                        connection_failure(&error),
                        exchange.repeatable(),
                        exchange.deadline,
                    )
                    .filter(|_| body.ready_to_resend())
                {
                    Counters::bump(&self.counters().connection_resends);
                    self.count_sent(exchange);
                    fresh = Some(clients);
                    continue;
                }
            }
            return Err(send_error(error, exchange.step, &exchange.request.url));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::{HeaderValue, CONTENT_TYPE};

    fn answer(status: u16, location: &str) -> Answer {
        let head = hyper::Response::builder()
            .status(status)
            .header(LOCATION, location)
            .body(Vec::new())
            .unwrap();
        Answer::Reqwest(reqwest::Response::from(head))
    }

    fn request(method: &str) -> ApiRequest {
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("text/plain"));
        headers.insert(COOKIE, HeaderValue::from_static("c=1"));
        ApiRequest {
            method: Method::from_bytes(method.as_bytes()).unwrap(),
            url: "https://api.example/a".parse().unwrap(),
            headers,
            body: Payload::Bytes(Bytes::from_static(b"body")),
        }
    }

    /// RFC 9110 §15.4: which method and body each redirect status gives the next hop.
    #[test]
    fn each_status_gives_the_next_hop_the_method_and_body_rfc_9110_says() {
        for (status, method, next, keeps_body) in [
            (301, "POST", "GET", false),
            (302, "POST", "GET", false),
            (301, "PUT", "PUT", true),
            (302, "DELETE", "DELETE", true),
            (301, "GET", "GET", true),
            (303, "POST", "GET", false),
            (303, "PUT", "GET", false),
            (303, "HEAD", "HEAD", true),
            (307, "POST", "POST", true),
            (308, "PATCH", "PATCH", true),
        ] {
            let req = request(method);
            let exchange = Exchange::new(&req, Role::Api, "request to", Duration::from_secs(1));
            let hop = exchange
                .redirect(&answer(status, "/b"), false)
                .unwrap()
                .unwrap();
            let case = format!("{method} through {status}");
            assert_eq!(hop.method.as_str(), next, "{case}");
            assert_eq!(hop.url.as_str(), "https://api.example/b", "{case}");
            assert_eq!(hop.body.length() == Some(0), !keeps_body, "{case}");
            assert_eq!(hop.headers.contains_key(CONTENT_TYPE), keeps_body, "{case}");
            assert!(hop.headers.contains_key(COOKIE), "{case}: same origin");
        }
    }

    #[test]
    fn leaving_the_origin_strips_credentials_and_other_schemes_end_the_chain() {
        let mut req = request("PUT");
        req.headers
            .insert(PROXY_AUTHORIZATION, HeaderValue::from_static("Basic x"));
        req.headers.insert("dpop", HeaderValue::from_static("p"));
        let exchange = Exchange::new(&req, Role::Api, "request to", Duration::from_secs(1));
        let hop = exchange
            .redirect(&answer(307, "https://other.example/b"), false)
            .unwrap()
            .unwrap();
        for name in ["cookie", "proxy-authorization", "dpop"] {
            assert!(!hop.headers.contains_key(name), "{name}");
        }
        assert_eq!(hop.body.length(), Some(4));
        let back_on_port = exchange
            .redirect(&answer(307, "https://api.example:8443/b"), false)
            .unwrap()
            .unwrap();
        assert!(!back_on_port.headers.contains_key(COOKIE), "another port");
        assert!(exchange
            .redirect(&answer(302, "ftp://api.example/b"), false)
            .unwrap()
            .is_none());
        let refused = exchange
            .redirect(&answer(302, "http://remote.example/b"), false)
            .err()
            .unwrap();
        assert_eq!(refused.code, Code::CLOUDAUTH_ERR_INSECURE_URL);
        assert!(exchange
            .redirect(&answer(200, "/b"), false)
            .unwrap()
            .is_none());
    }
}
