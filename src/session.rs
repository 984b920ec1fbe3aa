//! A session: the credentials, the token cache and the HTTP client, shared by every thread.

use crate::config::Config;
use crate::error::{Error, Result};
use crate::http::request::{ApiRequest, Response};
use crate::http::transport::{read_body, send_error, tracking_origin, Transport};
use crate::http::url_policy::{check_secure, parse_http_url};
use crate::secret::Scrubber;
use crate::token::cache::TokenCache;
use crate::token::endpoint::TokenEndpoint;
use crate::token::Token;
use reqwest::header::AUTHORIZATION;
use reqwest::StatusCode;
use std::sync::Arc;

const STEP: &str = "request to";

pub struct Session {
    endpoint: TokenEndpoint,
    cache: TokenCache,
    api: Transport,
    base_url: String,
    allow_insecure_http: bool,
    max_response_bytes: usize,
}

impl Session {
    /// Checks the config (credentials present, token URL safe) and builds the clients. Nothing
    /// is sent yet: the first token is fetched on first use.
    pub fn new(cfg: &Config) -> Result<Session> {
        let client_id = cfg
            .client_id
            .as_deref()
            .ok_or_else(|| Error::invalid("client_id is not set"))?;
        let secret = cfg
            .client_secret
            .as_ref()
            .ok_or_else(|| Error::invalid("client_secret is not set"))?;
        let token_url = parse_http_url("token_url", &cfg.token_url)?;
        check_secure("token_url", &token_url, cfg.allow_insecure_http)?;
        let (token_transport, api) = Transport::for_token_and_api(cfg)?;
        let endpoint = TokenEndpoint::new(cfg, token_transport, token_url, client_id, secret);
        Ok(Session {
            endpoint,
            cache: TokenCache::default(),
            api,
            base_url: cfg.base_url.clone(),
            allow_insecure_http: cfg.allow_insecure_http,
            max_response_bytes: cfg.max_response_bytes,
        })
    }

    /// Runs `f` on the current valid token, fetching or refreshing it first when needed.
    pub fn with_token<R>(&self, f: impl FnOnce(&str) -> R) -> Result<R> {
        self.cache
            .with_token(|| self.endpoint.fetch(), |t| f(t.value()))
    }

    /// How long the current valid token (fetched first if needed) has before it expires.
    pub fn token_expires_in(&self) -> Result<std::time::Duration> {
        self.cache.with_token(
            || self.endpoint.fetch(),
            |t| {
                t.expires_at
                    .saturating_duration_since(std::time::Instant::now())
            },
        )
    }

    pub fn invalidate(&self) {
        self.cache.invalidate();
    }

    /// Drops the cached token only if it is `rejected` (a token a server answered 401 to).
    pub fn invalidate_token(&self, rejected: &str) {
        self.cache
            .invalidate_if(|current| current.value() == rejected);
    }

    /// Sends an authorized request. Any HTTP status is a response; on a 401 the token used is
    /// dropped (if still current) and the request is sent once more with a fresh one.
    pub fn request<'a>(
        &self,
        method: &str,
        target: &str,
        headers: impl IntoIterator<Item = &'a str>,
        body: &[u8],
    ) -> Result<Response> {
        let request = ApiRequest::new(
            method,
            target,
            &self.base_url,
            self.allow_insecure_http,
            headers,
            body,
        )?;
        let token = self.current_token()?;
        let (response, token_seen) = self.send(&request, &token)?;
        // A 401 says something about the token only from a server that received it: after a
        // redirect off the request's origin (reqwest drops Authorization there, also for any
        // hop back) it is another server's answer, and neither dropping the token nor
        // resending can help.
        if response.status != StatusCode::UNAUTHORIZED || !token_seen {
            return Ok(response);
        }
        self.cache
            .invalidate_if(|current| std::ptr::eq(current, &*token));
        let fresh = self.current_token()?;
        Ok(self.send(&request, &fresh)?.0)
    }

    fn current_token(&self) -> Result<Arc<Token>> {
        self.cache.with_token(|| self.endpoint.fetch(), Arc::clone)
    }

    /// One send: the response, and whether the server that gave it received the token (no
    /// redirect left the request's origin).
    fn send(&self, request: &ApiRequest, token: &Token) -> Result<(Response, bool)> {
        let mut headers = request.headers.clone();
        headers.insert(AUTHORIZATION, token.bearer().clone());
        let result = self.api.run(|client| async move {
            let sending = client
                .request(request.method.clone(), request.url.clone())
                .headers(headers)
                .body(request.body.clone())
                .send();
            let (sent, left_origin) = tracking_origin(sending).await;
            let response = sent.map_err(|e| send_error(&e, STEP, &request.url))?;
            let status = response.status().as_u16();
            let token_seen = !left_origin && response.url().origin() == request.url.origin();
            let headers = Response::c_headers(response.headers());
            let body = read_body(response, self.max_response_bytes, STEP, &request.url).await?;
            let response = Response {
                status,
                headers,
                body,
            };
            Ok((response, token_seen))
        });
        // A hostile API server knows the token and may put it into what our messages quote (a
        // redirect target's path, say).
        result.map_err(|mut e| {
            e.message = Scrubber::for_token(token.value()).scrub(&e.message);
            e
        })
    }
}
