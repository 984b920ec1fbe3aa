//! The client-credentials grant (RFC 6749 §4.4) against the token endpoint, with bounded retries
//! of transient failures.

use crate::config::{AuthMethod, Config};
use crate::error::{one_line, quote_prefix, Code, Error, Result};
use crate::http::transport::{read_body, send_error, Transport};
use crate::http::url_policy::redact;
use crate::secret::{Scrubber, Secret};
use crate::token::{oauth_error_text, parse_grant, printable, Token, MAX_TOKEN_RESPONSE_BYTES};
use reqwest::header::{HeaderValue, ACCEPT, AUTHORIZATION, CONTENT_TYPE, RETRY_AFTER};
use reqwest::StatusCode;
use std::time::{Duration, Instant, SystemTime};
use url::Url;

const STEP: &str = "token request to";
const FIRST_BACKOFF: Duration = Duration::from_millis(250);
/// How much of the server's own text (scrubbed first) a message quotes.
const QUOTED_CHARS: usize = 240;

pub struct TokenEndpoint {
    transport: Transport,
    url: Url,
    /// The form body, built once; it holds the secret under client_secret_post.
    form: Secret,
    /// `Basic …` under client_secret_basic.
    basic: Option<HeaderValue>,
    /// Takes the secret, in every encoding, out of every message: a server may echo it back.
    scrubber: Scrubber,
    max_retries: u32,
    max_retry_wait: Duration,
    refresh_skew: Duration,
    default_expires_in: Duration,
}

/// One attempt's failure, and whether another attempt may help (with the server's wish).
struct Failure {
    error: Error,
    transient: bool,
    retry_after: Option<Duration>,
}

impl TokenEndpoint {
    pub fn new(
        cfg: &Config,
        transport: Transport,
        url: Url,
        client_id: &str,
        secret: &Secret,
    ) -> TokenEndpoint {
        let mut form = form_urlencoded::Serializer::new(String::new());
        form.append_pair("grant_type", "client_credentials");
        if let Some(scope) = &cfg.scope {
            form.append_pair("scope", scope);
        }
        let basic = match cfg.auth_method {
            AuthMethod::ClientSecretPost => {
                form.append_pair("client_id", client_id);
                form.append_pair("client_secret", secret.expose());
                None
            }
            AuthMethod::ClientSecretBasic => Some(basic_auth(client_id, secret)),
        };
        TokenEndpoint {
            transport,
            url,
            form: Secret::new(&form.finish()),
            basic,
            scrubber: Scrubber::for_credentials(client_id, secret),
            max_retries: cfg.max_retries,
            max_retry_wait: cfg.max_retry_wait,
            refresh_skew: cfg.refresh_skew,
            default_expires_in: cfg.default_expires_in,
        }
    }

    /// Fetches a new token, retrying connection failures, 5xx and 429 with exponential backoff
    /// and jitter, honouring `Retry-After` up to `max_retry_wait`.
    pub fn fetch(&self) -> Result<Token> {
        let attempts = self.max_retries + 1;
        for attempt in 1..=attempts {
            let failure = match self.attempt() {
                Ok(token) => return Ok(token),
                Err(f) => f,
            };
            if !failure.transient || attempt == attempts {
                let mut error = failure.error;
                if failure.transient && attempts > 1 {
                    error.message =
                        format!("{} (gave up after {attempts} attempts)", error.message);
                }
                // Scrubbed whole, then bounded: the order matters (see `Scrubber`).
                error.message = one_line(&self.scrubber.scrub(&error.message));
                return Err(error);
            }
            std::thread::sleep(self.wait_before_retry(attempt, failure.retry_after));
        }
        unreachable!("the last attempt always returns")
    }

    fn attempt(&self) -> std::result::Result<Token, Failure> {
        let obtained = Instant::now();
        let (status, retry_after, body) = self.exchange().map_err(|error| Failure {
            // A timeout already spent the caller's budget; a connection failure may be a blip.
            transient: error.code == Code::CLOUDAUTH_ERR_NETWORK,
            error,
            retry_after: None,
        })?;
        let shown = redact(&self.url);
        if status == StatusCode::OK {
            let grant = parse_grant(&body, self.default_expires_in).map_err(|e| Failure {
                error: Error::new(
                    e.code,
                    format!("{STEP} {shown}: HTTP 200 but {}", self.quote(&e.message)),
                ),
                transient: false,
                retry_after: None,
            })?;
            return Token::new(
                grant.access_token,
                grant.expires_in,
                self.refresh_skew,
                obtained,
            )
            .map_err(|e| Failure {
                error: Error::new(e.code, format!("{STEP} {shown}: {}", e.message)),
                transient: false,
                retry_after: None,
            });
        }
        let json = serde_json::from_slice::<serde_json::Value>(&body).ok();
        let said = match &json {
            Some(j) => self.quote(&oauth_error_text(j)),
            None if body.is_empty() => "the body is empty".into(),
            None => format!(
                "the body is not JSON: '{}'",
                self.quote(&String::from_utf8_lossy(&body))
            ),
        };
        let oauth_code = json
            .as_ref()
            .and_then(|j| j.get("error"))
            .and_then(serde_json::Value::as_str);
        let (code, transient, what) = match status.as_u16() {
            400 | 401 => (
                Code::CLOUDAUTH_ERR_AUTH_REJECTED,
                false,
                refusal(oauth_code),
            ),
            429 => (Code::CLOUDAUTH_ERR_TOKEN_ENDPOINT, true, "rate limited"),
            500..=599 => (Code::CLOUDAUTH_ERR_TOKEN_ENDPOINT, true, "server error"),
            _ => (
                Code::CLOUDAUTH_ERR_TOKEN_ENDPOINT,
                false,
                "unexpected status",
            ),
        };
        Err(Failure {
            error: Error::new(
                code,
                format!(
                    "{STEP} {shown} failed: HTTP {} ({what}), {said}",
                    status.as_u16()
                ),
            ),
            transient,
            retry_after,
        })
    }

    /// Server text as a message quotes it: credentials scrubbed from the whole text first,
    /// then one line of at most [`QUOTED_CHARS`].
    fn quote(&self, server_text: &str) -> String {
        quote_prefix(&printable(&self.scrubber.scrub(server_text)), QUOTED_CHARS)
    }

    /// One POST to the token endpoint: status, `Retry-After`, and the size-capped body.
    fn exchange(&self) -> Result<(StatusCode, Option<Duration>, Vec<u8>)> {
        self.transport.run(|client| async move {
            let mut request = client
                .post(self.url.clone())
                .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
                .header(ACCEPT, "application/json")
                .body(self.form.expose().to_owned());
            if let Some(basic) = &self.basic {
                request = request.header(AUTHORIZATION, basic.clone());
            }
            let response = request
                .send()
                .await
                .map_err(|e| send_error(&e, STEP, &self.url))?;
            let status = response.status();
            let retry_after = response
                .headers()
                .get(RETRY_AFTER)
                .and_then(parse_retry_after);
            let body = read_body(response, MAX_TOKEN_RESPONSE_BYTES, STEP, &self.url).await?;
            Ok((status, retry_after, body))
        })
    }

    fn wait_before_retry(&self, attempt: u32, retry_after: Option<Duration>) -> Duration {
        let wait = retry_after.unwrap_or_else(|| {
            let base = FIRST_BACKOFF.saturating_mul(1 << (attempt - 1).min(16));
            // "Equal jitter": at least half the backoff, so retries never bunch at zero.
            base / 2 + base.mul_f64(fastrand::f64() / 2.0)
        });
        wait.min(self.max_retry_wait)
    }
}

/// What a 400/401 means. Only the RFC 6749 §5.2 codes about the client or the grant are a
/// refusal of the credentials; anything else (`invalid_token`, an HTML page, no body) is most
/// likely not a token endpoint at all, so the message points at `token_url`.
fn refusal(oauth_code: Option<&str>) -> &'static str {
    match oauth_code {
        Some("invalid_client" | "unauthorized_client" | "invalid_grant") => {
            "the server refused the client credentials"
        }
        Some("unsupported_grant_type") => "the server does not offer the client_credentials grant",
        Some("invalid_scope") => "the server refused the requested scope",
        _ => "not a refusal of the client credentials; is token_url the token endpoint?",
    }
}

/// RFC 6749 §2.3.1: id and secret are form-encoded before they are joined and base64-encoded,
/// so `:`, `+` and `%` in a secret survive.
fn basic_auth(client_id: &str, secret: &Secret) -> HeaderValue {
    use base64::Engine as _;
    let encode = |s: &str| form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    let pair = Secret::new(&format!(
        "{}:{}",
        encode(client_id),
        encode(secret.expose())
    ));
    let mut value = HeaderValue::try_from(format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(pair.expose())
    ))
    .expect("base64 is always a valid header value");
    value.set_sensitive(true);
    value
}

/// `Retry-After` is either delay-seconds or an HTTP-date (RFC 9110 §10.2.3).
fn parse_retry_after(value: &HeaderValue) -> Option<Duration> {
    let text = value.to_str().ok()?.trim();
    if let Ok(seconds) = text.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let when = httpdate::parse_http_date(text).ok()?;
    Some(
        when.duration_since(SystemTime::now())
            .unwrap_or(Duration::ZERO),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_auth_form_encodes_before_base64() {
        use base64::Engine as _;
        let value = basic_auth("odd+id:%", &Secret::new("s3cr+t:with%odd chars&="));
        let b64 = value.to_str().unwrap().strip_prefix("Basic ").unwrap();
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(b64)
            .unwrap();
        assert_eq!(
            String::from_utf8(decoded).unwrap(),
            "odd%2Bid%3A%25:s3cr%2Bt%3Awith%25odd+chars%26%3D"
        );
    }

    #[test]
    fn retry_after_seconds_and_dates() {
        assert_eq!(
            parse_retry_after(&HeaderValue::from_static("7")),
            Some(Duration::from_secs(7))
        );
        let past = HeaderValue::from_static("Wed, 21 Oct 2015 07:28:00 GMT");
        assert_eq!(parse_retry_after(&past), Some(Duration::ZERO));
        assert_eq!(parse_retry_after(&HeaderValue::from_static("soon")), None);
    }
}
