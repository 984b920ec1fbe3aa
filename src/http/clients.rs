//! What carries one hop of an exchange (`pipeline` owns the chain of hops). Three carriers:
//!
//! - `direct`: hyper's connection API for the session's origin, when nothing reqwest adds is
//!   needed (no proxy, no client certificate); the path nearly every request takes (see there
//!   why);
//! - `bound`: with mutual TLS, the reqwest client that presents the certificate. A
//!   certificate-bound token (RFC 8705 §3) needs the certificate at the session's origin and
//!   nowhere else, and reqwest applies a TLS identity to a whole client, so it serves the
//!   session's origin (and, on the token side, the token request) only;
//! - `any`: reqwest for everything else (other origins, a proxy), presenting nothing.
//!
//! None of them follows a redirect: each sends one request and hands back its answer.

use crate::http::body::Payload;
use crate::http::direct::{self, Direct};
use reqwest::header::HeaderMap;
use reqwest::{Client, Method, Response, StatusCode};
use std::sync::Arc;
use std::time::Instant;
use url::{Origin, Url};

#[derive(Clone)]
pub struct Clients {
    /// Presents no certificate; for every origin that is not `bound`'s.
    pub(crate) any: Client,
    /// With mutual TLS: the client that presents the certificate.
    pub(crate) bound: Option<Bound>,
    /// Requests to the session's origin, straight on hyper (`direct`), where nothing reqwest
    /// adds (a proxy, a client certificate) is needed.
    pub(crate) direct: Option<Arc<Direct>>,
}

#[derive(Clone)]
pub(crate) struct Bound {
    pub(crate) client: Client,
    /// The API's: the session's origin, the only one `client` is used for. `None` on the
    /// token transport, where only the token request uses it ([`Role::TokenEndpoint`]).
    pub(crate) origin: Option<Arc<Origin>>,
}

impl Bound {
    fn serves(&self, url: &Url) -> bool {
        self.origin.as_deref().is_some_and(|o| url.origin() == *o)
    }
}

/// What an exchange is, for the choice of carrier.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Role {
    /// An API request: the certificate (if any) at the session's origin only.
    Api,
    /// The token request: the certificate (if any) always (RFC 8705 §2).
    TokenEndpoint,
    /// Anything else sent to the authorization server (discovery): no certificate.
    Other,
}

/// Which carrier a hop takes, besides its URL.
#[derive(Clone, Copy, Debug)]
pub struct Route {
    pub role: Role,
    /// The exchange has left its first origin: no certificate any more, even back at the
    /// session's origin.
    pub left: bool,
}

/// A response head, from reqwest or from the direct path.
pub enum Answer {
    Reqwest(Response),
    Direct(direct::Answer),
}

/// A hop that failed, on either carrier.
pub enum SendError {
    Reqwest(reqwest::Error),
    Direct(direct::Failure),
}

impl From<reqwest::Error> for SendError {
    fn from(e: reqwest::Error) -> SendError {
        SendError::Reqwest(e)
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

    /// The headers, taken out (the body is read after).
    pub fn take_headers(&mut self) -> HeaderMap {
        match self {
            Answer::Reqwest(r) => std::mem::take(r.headers_mut()),
            Answer::Direct(d) => std::mem::take(&mut d.headers),
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

impl Clients {
    /// Sends one hop on the carrier for `url` and `route`. The answer (its body too) must come
    /// before `deadline`.
    pub async fn send_hop(
        &self,
        route: Route,
        method: &Method,
        url: &Url,
        headers: HeaderMap,
        body: &Payload,
        deadline: Instant,
    ) -> Result<Answer, SendError> {
        if let Some(direct) = self.direct.as_ref().filter(|d| d.serves(url)) {
            // Boxed (one allocation, as reqwest makes for its own request future): the caller's
            // future, moved whole into the runtime, stays small.
            let body = body.outgoing(deadline);
            let answer = Box::pin(direct.send(method.clone(), url, headers, body, deadline))
                .await
                .map_err(SendError::Direct)?;
            return Ok(Answer::Direct(answer));
        }
        let client = match &self.bound {
            Some(b)
                if !route.left
                    && (route.role == Role::TokenEndpoint
                        || (route.role == Role::Api && b.serves(url))) =>
            {
                &b.client
            }
            _ => &self.any,
        };
        // reqwest's connections write with plain `write`: SIGPIPE stays blocked on this thread
        // until the runtime's turn ends (`crate::sigpipe`).
        crate::sigpipe::hold();
        let left_time = deadline.saturating_duration_since(Instant::now());
        let body = match body {
            Payload::Bytes(bytes) => reqwest::Body::from(bytes.clone()),
            streamed => reqwest::Body::wrap(streamed.outgoing(deadline)),
        };
        let send = client
            .request(method.clone(), url.clone())
            .headers(headers)
            .body(body)
            // Until the body's end (reqwest's total timeout covers it).
            .timeout(left_time)
            .send();
        Ok(Answer::Reqwest(Box::pin(send).await?))
    }
}
