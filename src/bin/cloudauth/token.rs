//! `cloudauth token`: the current valid token, bare, as a header line, or as JSON.

use crate::exit::Failure;
use clap::ValueEnum;
use cloudauth::Session;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

#[derive(clap::Args)]
pub struct Args {
    /// bare: the token alone; header: `Authorization: Bearer <token>`; json: access_token,
    /// token_type, expires_in (seconds left) and expires_on (epoch seconds)
    #[arg(long, value_enum, default_value_t = Format::Bare)]
    format: Format,

    /// Drop the cached token (in memory and in the token cache) and fetch a new one: after a
    /// server rejected it, e.g. revoked it before it expired
    #[arg(long)]
    refresh: bool,
}

#[derive(Clone, Copy, ValueEnum)]
enum Format {
    Bare,
    Header,
    Json,
}

pub fn run(session: &Session, args: &Args) -> Result<u8, Failure> {
    let mut token = zeroize::Zeroizing::new(session.with_token(str::to_owned)?);
    // A token just fetched from the server is already new; one from the cache is dropped
    // (only if still current there) and replaced.
    if args.refresh && session.stats().token_requests == 0 {
        session.invalidate_token(&token);
        token = zeroize::Zeroizing::new(session.with_token(str::to_owned)?);
    }
    let line = match args.format {
        Format::Bare => format!("{}\n", *token),
        Format::Header => format!("Authorization: Bearer {}\n", *token),
        Format::Json => {
            // Read right after the token: both come from the cached entry.
            let expires_in = session.token_expires_in()?;
            json(&token, expires_in, SystemTime::now())
        }
    };
    crate::exit::write_stdout(line.as_bytes(), "the token")
}

/// `expires_on` is epoch seconds, as `az account get-access-token` settled on; the library's
/// only token type is Bearer.
fn json(token: &str, expires_in: Duration, now: SystemTime) -> String {
    let now = now.duration_since(UNIX_EPOCH).unwrap_or_default();
    let value = serde_json::json!({
        "access_token": token,
        "token_type": "Bearer",
        "expires_in": expires_in.as_secs(),
        "expires_on": (now + expires_in).as_secs(),
    });
    format!("{value}\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_fields() {
        let now = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let text = json("t.o\"k", Duration::from_millis(3_599_900), now);
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["access_token"], "t.o\"k");
        assert_eq!(v["token_type"], "Bearer");
        assert_eq!(v["expires_in"], 3599);
        assert_eq!(v["expires_on"], 1_700_003_599);
    }
}
