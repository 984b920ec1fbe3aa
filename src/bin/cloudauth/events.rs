//! The library's events (token fetched and why, retries, 401s, cache trouble) as `*` lines on
//! stderr, for `request -v`. Event fields never hold a secret or a token.

use cloudauth::events::{Event, Events};
use std::sync::Arc;

pub fn to_stderr() -> Events {
    Events::new(Some(Arc::new(|e: &Event<'_>| eprintln!("{}", line(e)))))
}

fn line(e: &Event<'_>) -> String {
    let mut text = format!("* event {}", e.kind.name());
    if let Some(reason) = e.reason {
        text += &format!(" reason={}", reason.name());
    }
    if e.result != cloudauth::Code::CLOUDAUTH_OK {
        text += &format!(" result={}", e.result.name());
    }
    if e.http_status != 0 {
        text += &format!(" http_status={}", e.http_status);
    }
    text += &format!(" duration_ms={}", e.duration.as_millis());
    if !e.message.is_empty() {
        text += &format!(": {}", e.message);
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use cloudauth::events::{EventKind, Reason};
    use std::time::Duration;

    #[test]
    fn one_line_per_event() {
        let e = Event {
            kind: EventKind::TokenFetched,
            reason: Some(Reason::FirstUse),
            result: cloudauth::Code::CLOUDAUTH_OK,
            http_status: 200,
            duration: Duration::from_millis(12),
            message: "",
        };
        assert_eq!(
            line(&e),
            "* event token_fetched reason=first_use http_status=200 duration_ms=12"
        );
    }
}
