//! The clients one request may use, and which one it uses. Without mutual TLS that is one
//! client for every origin. With it, a certificate-bound token (RFC 8705 §3) needs the
//! certificate at the session's origin and nowhere else, and reqwest applies a TLS identity to
//! a whole client, so the API side has two: `bound` presents the certificate and is used only
//! for the session's origin, `any` presents nothing and serves every other origin.
//!
//! Redirects: `bound` follows hops within its origin, and stops at one that leaves it (its
//! policy, in `transport`, calls [`hand_off`]); that hop is then sent with `any`, which follows
//! the rest of the chain. So no connection that presents the certificate is ever opened to
//! another origin, and the chain keeps reqwest's rules (method and body per status, sensitive
//! headers dropped, at most 10 hops in all).

use reqwest::header::{
    HeaderMap, HeaderName, AUTHORIZATION, CONTENT_ENCODING, CONTENT_LENGTH, CONTENT_TYPE, COOKIE,
    LOCATION, PROXY_AUTHORIZATION, TRANSFER_ENCODING, WWW_AUTHENTICATE,
};
use reqwest::{Client, Method, Response, StatusCode};
use std::cell::Cell;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use url::{Origin, Url};

#[derive(Clone)]
pub struct Clients {
    /// Presents no certificate; for every origin that is not `bound`'s.
    pub(crate) any: Client,
    /// With mutual TLS: the client that presents the certificate.
    pub(crate) bound: Option<Bound>,
}

#[derive(Clone)]
pub(crate) struct Bound {
    pub(crate) client: Client,
    /// The API's: the session's origin, the only one `client` is used for. `None` on the
    /// token transport, where the token endpoint asks for it by [`Clients::for_token_endpoint`].
    pub(crate) origin: Option<Arc<Origin>>,
}

impl Bound {
    fn serves(&self, url: &Url) -> bool {
        self.origin.as_deref().is_some_and(|o| url.origin() == *o)
    }
}

/// The state of one request's redirect chain across the two clients.
struct Chain {
    /// Set by `bound`'s policy at a hop that leaves its origin: how many URLs the chain had
    /// visited then.
    handed_off_at: Cell<Option<usize>>,
    /// The hops `bound` took before `any` continues the chain, so the limit counts them too.
    hops_before: Cell<usize>,
}

tokio::task_local! {
    static CHAIN: Chain;
}

/// Called by `bound`'s redirect policy (which runs inside the sending task) when it stops at a
/// hop off its origin, with the number of URLs visited so far.
pub(crate) fn hand_off(visited: usize) {
    let _ = CHAIN.try_with(|c| c.handed_off_at.set(Some(visited)));
}

/// How many URLs the chain visited before the client now following it took over.
pub(crate) fn hops_before() -> usize {
    CHAIN.try_with(|c| c.hops_before.get()).unwrap_or(0)
}

/// Headers that must not follow a request to another origin: reqwest's list, and DPoP's proof
/// (it is bound to one URL).
const SENSITIVE: [HeaderName; 4] = [AUTHORIZATION, COOKIE, PROXY_AUTHORIZATION, WWW_AUTHENTICATE];

impl Clients {
    /// The client a request to `url` starts with.
    pub fn for_url(&self, url: &Url) -> &Client {
        match &self.bound {
            Some(bound) if bound.serves(url) => &bound.client,
            _ => &self.any,
        }
    }

    /// The client of the token request: the one that presents the certificate, if any
    /// (RFC 8705 §2). Other requests to the authorization server (discovery) use `for_url`.
    pub fn for_token_endpoint(&self) -> &Client {
        self.bound.as_ref().map_or(&self.any, |b| &b.client)
    }

    /// Sends the request, following redirects as described above. The caller tracks whether
    /// the chain left the request's origin (`transport::tracking_origin`); a hand-off always
    /// does.
    pub fn send<'a>(
        &'a self,
        method: Method,
        url: &'a Url,
        headers: HeaderMap,
        body: bytes::Bytes,
    ) -> impl Future<Output = reqwest::Result<Response>> + Send + 'a {
        match self.bound.as_ref().filter(|b| b.serves(url)) {
            // reqwest's own future, unwrapped: the request hot path stays as it was.
            None => Sending::Plain(
                self.any
                    .request(method, url.clone())
                    .headers(headers)
                    .body(body)
                    .send(),
            ),
            Some(bound) => {
                Sending::Bound(Box::pin(self.send_bound(bound, method, url, headers, body)))
            }
        }
    }

    async fn send_bound(
        &self,
        bound: &Bound,
        method: Method,
        url: &Url,
        headers: HeaderMap,
        body: bytes::Bytes,
    ) -> reqwest::Result<Response> {
        let chain = Chain {
            handed_off_at: Cell::new(None),
            hops_before: Cell::new(0),
        };
        CHAIN
            .scope(chain, async move {
                let sent = bound
                    .client
                    .request(method.clone(), url.clone())
                    .headers(headers.clone())
                    .body(body.clone())
                    .send()
                    .await?;
                let Some(visited) = CHAIN.with(|c| c.handed_off_at.get()) else {
                    return Ok(sent);
                };
                let Some(next) = next_hop(&sent, method, headers, body) else {
                    return Ok(sent);
                };
                drop(sent);
                CHAIN.with(|c| c.hops_before.set(visited));
                crate::http::transport::note_left_origin();
                let (method, url, headers, body) = next;
                self.any
                    .request(method, url)
                    .headers(headers)
                    .body(body)
                    .send()
                    .await
            })
            .await
    }
}

/// A request on its way: reqwest's future `P`, or the chain of [`Clients::send_bound`].
enum Sending<'a, P> {
    Plain(P),
    Bound(Pin<Box<dyn Future<Output = reqwest::Result<Response>> + Send + 'a>>),
}

impl<P: Future<Output = reqwest::Result<Response>> + Unpin> Future for Sending<'_, P> {
    type Output = reqwest::Result<Response>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.get_mut() {
            Sending::Plain(pending) => Pin::new(pending).poll(cx),
            Sending::Bound(chain) => chain.as_mut().poll(cx),
        }
    }
}

/// The request a redirect response asks for, as reqwest would send it: 301/302/303 turn into a
/// GET without a body (HEAD stays HEAD), 307/308 keep both; the headers lose what must not
/// cross origins. `None` when it is no redirect reqwest would follow: the caller gets it.
fn next_hop(
    response: &Response,
    method: Method,
    mut headers: HeaderMap,
    body: bytes::Bytes,
) -> Option<(Method, Url, HeaderMap, bytes::Bytes)> {
    let location = response.headers().get(LOCATION)?.to_str().ok()?;
    let url = response.url().join(location).ok()?;
    let (method, body) = match response.status() {
        StatusCode::MOVED_PERMANENTLY | StatusCode::FOUND | StatusCode::SEE_OTHER => {
            for name in [
                TRANSFER_ENCODING,
                CONTENT_ENCODING,
                CONTENT_TYPE,
                CONTENT_LENGTH,
            ] {
                headers.remove(name);
            }
            let method = if method == Method::HEAD {
                Method::HEAD
            } else {
                Method::GET
            };
            (method, bytes::Bytes::new())
        }
        StatusCode::TEMPORARY_REDIRECT | StatusCode::PERMANENT_REDIRECT => (method, body),
        _ => return None,
    };
    for name in SENSITIVE {
        headers.remove(name);
    }
    headers.remove("dpop");
    Some((method, url, headers, body))
}
