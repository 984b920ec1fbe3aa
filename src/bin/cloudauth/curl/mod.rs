//! `cloudauth curl ARGS...`: curl with the Authorization header in a config read from its
//! stdin (`-K -`), so the token never appears in an argv that every user can read. Every URL
//! curl will use is checked first (`argv`), curl's environment holds none of our settings,
//! and a 401 from the session's origin to a request that carried the token drops it
//! (`status`), as `cloudauth request` does.

mod argv;
mod glob;
mod options;
mod status;

use crate::exit::{Failure, LOCAL};
use cloudauth::{Config, Session};
use std::io::Write;
use std::process::{Command, Stdio};
use zeroize::Zeroizing;

#[derive(clap::Args)]
pub struct Args {
    /// Arguments for curl, passed as given (after the token header); a URL that is a path is
    /// joined to base_url. curl's stdin carries the header, so `-d @-` cannot read this
    /// command's stdin; -K/--config, --next and --location-trusted are refused
    #[arg(
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "CURL ARGS"
    )]
    args: Vec<String>,
}

/// Longest `--write-out @FILE` read.
const MAX_FORMAT_BYTES: u64 = 64 * 1024;

/// `env_prefix`: the prefix of the variables the settings came from; curl gets none of them.
pub fn run(session: &Session, cfg: &Config, env_prefix: &str, args: &Args) -> Result<u8, Failure> {
    let plan = argv::read(&args.args, &cfg.base_url, cfg.allow_insecure_http)?;
    let user_format = match plan.write_out.as_deref() {
        Some("@-") => {
            return Err(Failure::Usage(
                "cloudauth curl: --write-out @- is refused: curl's stdin carries the token".into(),
            ))
        }
        Some(f) => Some(read_format(f)?),
        None => None,
    };
    let marker = status::Marker::new();
    let (config, token) = session.with_token(|t| {
        (
            Zeroizing::new(header_config(t)),
            Zeroizing::new(t.to_owned()),
        )
    })?;
    let mut command = Command::new("curl");
    // -q first: no ~/.curlrc, whose options and URLs were not checked.
    command
        .args(["-q", "-K", "-"])
        .args(&plan.args)
        .arg("-w")
        .arg(marker.write_out(user_format.as_deref()));
    for (name, _) in std::env::vars_os() {
        let name = name.to_string_lossy();
        if name.starts_with(cloudauth::config::ENV_PREFIX)
            || (!env_prefix.is_empty() && name.starts_with(env_prefix))
        {
            command.env_remove(&*name);
        }
    }
    let mut child = command
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| Failure::Local(format!("cannot run curl: {e} (is curl installed?)")))?;
    let mut stdin = child.stdin.take().expect("stdin was piped");
    let stderr = child.stderr.take().expect("stderr was piped");
    let relay = std::thread::spawn(move || marker.filter(stderr, std::io::stderr()));
    // A curl that exits before reading (bad option) closes the pipe: its status tells why.
    let _ = stdin.write_all(config.as_bytes());
    drop(stdin);
    let status = child
        .wait()
        .map_err(|e| Failure::Local(format!("waiting for curl failed: {e}")))?;
    let transfers = relay.join().unwrap_or_default();
    if transfers
        .iter()
        .any(|t| rejected_our_token(t, &cfg.base_url))
    {
        // Only if it is still the current one; the file cache's entry goes too.
        session.invalidate_token(&token);
    }
    Ok(match status.code() {
        Some(code) => u8::try_from(code).unwrap_or(LOCAL),
        // Killed by a signal: the shell's convention.
        None => {
            use std::os::unix::process::ExitStatusExt;
            128u8.saturating_add(status.signal().unwrap_or(0) as u8)
        }
    })
}

/// A 401 from the session's origin to a request that carried the token: curl sends the header
/// on redirects only while they stay at the first URL's origin, so the final hop carried it
/// when it is at the first URL's origin too.
fn rejected_our_token(t: &status::Transfer, base_url: &str) -> bool {
    let origin = |u: &str| url::Url::parse(u).ok().map(|u| u.origin());
    let ours = origin(base_url);
    t.status == 401
        && ours.is_some()
        && origin(&t.first_url) == ours
        && origin(&t.final_url) == ours
}

fn read_format(format: &str) -> Result<String, Failure> {
    let Some(path) = format.strip_prefix('@') else {
        return Ok(format.to_owned());
    };
    use std::io::Read;
    let mut text = String::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(MAX_FORMAT_BYTES).read_to_string(&mut text))
        .map_err(|e| Failure::Local(format!("--write-out @{path}: cannot read the file: {e}")))?;
    Ok(text)
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
    fn a_401_counts_when_the_final_hop_carried_the_token() {
        let t = |status, first: &str, last: &str| status::Transfer {
            status,
            first_url: first.into(),
            final_url: last.into(),
        };
        let base = "https://api.example/v1/";
        assert!(rejected_our_token(
            &t(401, "https://api.example/a", "https://api.example/b"),
            base
        ));
        assert!(!rejected_our_token(
            &t(200, "https://api.example/a", "https://api.example/a"),
            base
        ));
        assert!(!rejected_our_token(
            &t(401, "https://other.example/a", "https://api.example/b"),
            base
        ));
        assert!(!rejected_our_token(
            &t(401, "https://api.example/a", "https://other.example/b"),
            base
        ));
    }
}
