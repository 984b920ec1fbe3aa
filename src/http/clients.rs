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
//!
//! Without a certificate or a proxy, requests to the session's origin skip reqwest and go out on
//! `direct` (see there why). It sends one request; a redirect it gets is checked as reqwest's
//! policy checks a hop, and the chain goes on with `any`, counted the same way.

use crate::http::direct::{self, Direct};
use crate::http::url_policy::follows_redirect_to;
use reqwest::header::{
    HeaderMap, HeaderName, AUTHORIZATION, CONTENT_ENCODING, CONTENT_LENGTH, CONTENT_TYPE, COOKIE,
    LOCATION, PROXY_AUTHORIZATION, TRANSFER_ENCODING, WWW_AUTHENTICATE,
};
use reqwest::{Client, Method, Response, StatusCode};
use std::cell::Cell;
use std::sync::Arc;
use url::{Origin, Url};

#[derive(Clone)]
pub struct Clients {
    /// Presents no certificate; for every origin that is not `bound`'s.
    pub(crate) any: Client,
    /// With mutual TLS: the client that presents the certificate.
    pub(crate) bound: Option<Bound>,
    /// Requests to the session's origin, straight on hyper (`direct`), where nothing reqwest
    /// adds (a proxy, a client certificate) is needed. A redirect it gets goes on with `any`.
    pub(crate) direct: Option<Arc<Direct>>,
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

/// A response head, from reqwest or from the direct path.
pub enum Answer {
    Reqwest(Response),
    Direct(direct::Answer),
}

/// A send that failed, on either path.
pub enum SendError {
    Reqwest(reqwest::Error),
    Direct(direct::Failure),
    /// The direct path's first redirect hop broke the URL rules (`check_secure`).
    InsecureRedirect(String),
}

impl From<reqwest::Error> for SendError {
    fn from(e: reqwest::Error) -> SendError {
        SendError::Reqwest(e)
    }
}

impl From<Response> for Answer {
    fn from(r: Response) -> Answer {
        Answer::Reqwest(r)
    }
}

impl Answer {
    pub fn status(&self) -> StatusCode {
        match self {
            Answer::Reqwest(r) => r.status(),
            Answer::Direct(d) => d.status,
        }
    }

    pub fn headers(&self) -> &HeaderMap {
        match self {
            Answer::Reqwest(r) => r.headers(),
            Answer::Direct(d) => &d.headers,
        }
    }

    /// The URL that answered: `sent_to`, unless redirects took the request elsewhere.
    pub fn url_or<'a>(&'a self, sent_to: &'a Url) -> &'a Url {
        match self {
            Answer::Reqwest(r) => r.url(),
            Answer::Direct(_) => sent_to,
        }
    }

    /// The body's declared length.
    pub fn content_length(&self) -> Option<u64> {
        match self {
            Answer::Reqwest(r) => r.content_length(),
            Answer::Direct(d) => d.content_length(),
        }
    }

    /// The next piece of the body; `None` at its end.
    pub async fn chunk(&mut self) -> Result<Option<bytes::Bytes>, SendError> {
        match self {
            Answer::Reqwest(r) => r.chunk().await.map_err(SendError::Reqwest),
            Answer::Direct(d) => d.chunk().await.map_err(SendError::Direct),
        }
    }
}

/// The state of one request's redirect chain across the two clients.
struct Chain {
    /// Set by `bound`'s policy at a hop that leaves its origin: how many URLs the chain had
    /// visited then.
    handed_off_at: Cell<Option<usize>>,
    /// The hops taken before `any` continues the chain, so the limit counts them too.
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
    /// The client a request to `url` starts with, when it goes through reqwest.
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

    /// Sends the request, following redirects as described above; `headers` is called for
    /// each client the request goes through. The caller tracks whether the chain left the
    /// request's origin (`transport::tracking_origin`); a hand-off to another origin always
    /// does.
    pub async fn send(
        &self,
        method: &Method,
        url: &Url,
        mut headers: impl FnMut() -> HeaderMap,
        body: &bytes::Bytes,
    ) -> Result<Answer, SendError> {
        if let Some(direct) = self.direct.as_ref().filter(|d| d.serves(url)) {
            // Boxed (one allocation, as reqwest makes for its own request future): the caller's
            // future, moved whole into the runtime, stays small.
            let answer = Box::pin(direct.send(method.clone(), url, headers(), body.clone()))
                .await
                .map_err(SendError::Direct)?;
            if !direct.follow_redirects {
                return Ok(Answer::Direct(answer));
            }
            let Some(next) = redirect_target(&answer, url, direct.allow_insecure_http)? else {
                return Ok(Answer::Direct(answer));
            };
            let cross = !direct.serves(&next);
            let Some((method, headers, body)) = next_hop(
                answer.status,
                method.clone(),
                headers(),
                body.clone(),
                cross,
            ) else {
                return Ok(Answer::Direct(answer));
            };
            drop(answer);
            if cross {
                crate::http::transport::note_left_origin();
            }
            return Box::pin(self.continue_on_any(1, method, next, headers, body)).await;
        }
        let Some(bound) = self.bound.as_ref().filter(|b| b.serves(url)) else {
            return Ok(Answer::Reqwest(
                self.any
                    .request(method.clone(), url.clone())
                    .headers(headers())
                    .body(body.clone())
                    .send()
                    .await?,
            ));
        };
        let chain = Chain {
            handed_off_at: Cell::new(None),
            hops_before: Cell::new(0),
        };
        let headers = headers();
        // Boxed, like the rest of a redirect chain: rare, and kept out of every request's future.
        Box::pin(CHAIN.scope(chain, async move {
            let sent = bound
                .client
                .request(method.clone(), url.clone())
                .headers(headers.clone())
                .body(body.clone())
                .send()
                .await?;
            let Some(visited) = CHAIN.with(|c| c.handed_off_at.get()) else {
                return Ok(Answer::Reqwest(sent));
            };
            let Some(next) = sent
                .headers()
                .get(LOCATION)
                .and_then(|l| l.to_str().ok())
                .and_then(|l| sent.url().join(l).ok())
            else {
                return Ok(Answer::Reqwest(sent));
            };
            let Some((method, headers, body)) =
                next_hop(sent.status(), method.clone(), headers, body.clone(), true)
            else {
                return Ok(Answer::Reqwest(sent));
            };
            drop(sent);
            crate::http::transport::note_left_origin();
            self.continue_on_any(visited, method, next, headers, body)
                .await
        }))
        .await
    }

    /// A redirect chain that another client started, continued on `any` from `next`.
    async fn continue_on_any(
        &self,
        visited: usize,
        method: Method,
        next: Url,
        headers: HeaderMap,
        body: bytes::Bytes,
    ) -> Result<Answer, SendError> {
        let chain = Chain {
            handed_off_at: Cell::new(None),
            hops_before: Cell::new(visited),
        };
        let send = self
            .any
            .request(method, next)
            .headers(headers)
            .body(body)
            .send();
        Ok(Answer::Reqwest(CHAIN.scope(chain, send).await?))
    }
}

/// Where a redirect the direct path got leads, when reqwest's policy would follow it (`None`:
/// the caller gets the 3xx). Checked as the policy checks every hop.
fn redirect_target(
    answer: &direct::Answer,
    url: &Url,
    allow_insecure_http: bool,
) -> Result<Option<Url>, SendError> {
    if !matches!(answer.status.as_u16(), 301 | 302 | 303 | 307 | 308) {
        return Ok(None);
    }
    let Some(next) = answer
        .headers
        .get(LOCATION)
        .and_then(|l| l.to_str().ok())
        .and_then(|l| url.join(l).ok())
    else {
        return Ok(None);
    };
    match follows_redirect_to(&next, allow_insecure_http) {
        Ok(true) => Ok(Some(next)),
        Ok(false) => Ok(None),
        Err(message) => Err(SendError::InsecureRedirect(message)),
    }
}

/// The request a redirect with `status` asks for, as reqwest would send it: 301/302/303 turn
/// into a GET without a body (HEAD stays HEAD), 307/308 keep both; to another origin the
/// headers lose what must not cross. `None` when it is no redirect reqwest would follow: the
/// caller gets it.
fn next_hop(
    status: StatusCode,
    method: Method,
    mut headers: HeaderMap,
    body: bytes::Bytes,
    cross_origin: bool,
) -> Option<(Method, HeaderMap, bytes::Bytes)> {
    let (method, body) = match status {
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
    if cross_origin {
        for name in SENSITIVE {
            headers.remove(name);
        }
        headers.remove("dpop");
    }
    Some((method, headers, body))
}
