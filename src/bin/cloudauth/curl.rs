//! `cloudauth curl ARGS...`: curl with the Authorization header in a config read from its
//! stdin (`-K -`), so the token never appears in an argv that every user can read.

use crate::exit::{Failure, LOCAL};
use cloudauth::http::url_policy::check_secure;
use cloudauth::{Config, Session};
use std::io::Write;
use std::process::{Command, Stdio};

#[derive(clap::Args)]
pub struct Args {
    /// Arguments for curl, passed as given (after the token header). curl's stdin carries the
    /// header, so `-d @-` cannot read this command's stdin
    #[arg(
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "CURL ARGS"
    )]
    args: Vec<String>,
}

pub fn run(session: &Session, cfg: &Config, args: &Args) -> Result<u8, Failure> {
    check_urls(&args.args, cfg.allow_insecure_http)?;
    let config = zeroize::Zeroizing::new(session.with_token(header_config)?);
    let mut child = Command::new("curl")
        .arg("-K")
        .arg("-")
        .args(&args.args)
        .stdin(Stdio::piped())
        .spawn()
        .map_err(|e| Failure::Local(format!("cannot run curl: {e} (is curl installed?)")))?;
    let mut stdin = child.stdin.take().expect("stdin was piped");
    // A curl that exits before reading (bad option) closes the pipe: its status tells why.
    let _ = stdin.write_all(config.as_bytes());
    drop(stdin);
    let status = child
        .wait()
        .map_err(|e| Failure::Local(format!("waiting for curl failed: {e}")))?;
    Ok(match status.code() {
        Some(code) => u8::try_from(code).unwrap_or(LOCAL),
        // Killed by a signal: the shell's convention.
        None => {
            use std::os::unix::process::ExitStatusExt;
            128u8.saturating_add(status.signal().unwrap_or(0) as u8)
        }
    })
}

/// One curl config line. In a double-quoted value curl reads `\"` and `\\` as escapes
/// (and `\t`, `\n`, `\r`, `\v`): escape exactly those two, so the value arrives intact.
fn header_config(token: &str) -> String {
    let mut line = String::with_capacity(token.len() + 40);
    line.push_str("header = \"Authorization: Bearer ");
    for c in token.chars() {
        if c == '"' || c == '\\' {
            line.push('\\');
        }
        line.push(c);
    }
    line.push_str("\"\n");
    line
}

/// The library never sends a token over plain http to a remote host; hold curl to the same
/// rule for every URL-looking argument (curl's own option values aside, a best effort).
fn check_urls(args: &[String], allow_insecure_http: bool) -> Result<(), Failure> {
    for arg in args {
        if arg
            .get(..7)
            .is_some_and(|s| s.eq_ignore_ascii_case("http://"))
        {
            if let Ok(url) = url::Url::parse(arg) {
                check_secure("curl URL", &url, allow_insecure_http)?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_line_escapes_quote_and_backslash() {
        assert_eq!(
            header_config("a.b-c_d"),
            "header = \"Authorization: Bearer a.b-c_d\"\n"
        );
        assert_eq!(
            header_config("x\"y\\z"),
            "header = \"Authorization: Bearer x\\\"y\\\\z\"\n"
        );
    }

    #[test]
    fn plain_http_only_to_loopback() {
        let args = |a: &str| vec!["-s".to_string(), "é".repeat(5), a.to_string()];
        assert!(check_urls(&args("http://127.0.0.1:8/x"), false).is_ok());
        assert!(check_urls(&args("https://example.com/x"), false).is_ok());
        let e = check_urls(&args("http://example.com/x"), false).unwrap_err();
        assert!(
            matches!(e, Failure::Library(ref e) if e.code == cloudauth::Code::CLOUDAUTH_ERR_INSECURE_URL)
        );
        assert!(check_urls(&args("http://example.com/x"), true).is_ok());
    }
}
