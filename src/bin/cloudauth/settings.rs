//! The configuration every subcommand starts from: the tool's defaults, the environment
//! (the library's `from_env` rules), `--set KEY=VALUE`, and the secret from stdin.

use crate::exit::Failure;
use clap::Args;
use cloudauth::config::keys;
use cloudauth::Config;
use std::io::{BufRead, IsTerminal, Read};
use zeroize::Zeroizing;

#[derive(Args)]
pub struct Settings {
    /// Set a library configuration key (repeatable), e.g. --set token_url=https://host/token.
    /// Applied after the environment. The client secret cannot be given this way
    #[arg(
        long = "set",
        value_name = "KEY=VALUE",
        global = true,
        help_heading = "Configuration"
    )]
    set: Vec<String>,

    /// Set a library configuration key from a file's contents (one trailing newline dropped),
    /// e.g. --set-file redis_url=/run/secrets/redis_url: for values that hold a password
    #[arg(
        long = "set-file",
        value_name = "KEY=PATH",
        global = true,
        help_heading = "Configuration"
    )]
    set_file: Vec<String>,

    /// Read the client secret from stdin (one line; without echo on a terminal)
    #[arg(long, global = true, help_heading = "Configuration")]
    secret_stdin: bool,

    /// Prefix of the configuration variables
    #[arg(long, value_name = "PREFIX", default_value = cloudauth::config::ENV_PREFIX, global = true, help_heading = "Configuration")]
    env_prefix: String,
}

/// Longest secret read from stdin; a longer input is a mistake (a file piped by accident).
const MAX_SECRET_BYTES: u64 = 64 * 1024;

impl Settings {
    pub fn secret_stdin(&self) -> bool {
        self.secret_stdin
    }

    pub fn env_prefix(&self) -> &str {
        &self.env_prefix
    }

    pub fn config(&self) -> Result<Config, Failure> {
        let mut cfg = Config::default();
        // Successive invocations share one token. The key arrives with the shared caches;
        // until the library knows it, the tool runs with the in-memory cache.
        if let Err(e) = cfg.set("token_cache", "file") {
            if keys().any(|k| k == "token_cache") {
                return Err(e.into());
            }
        }
        cfg.set_from_env(Some(&self.env_prefix))?;
        for item in &self.set {
            let (key, value) = item.split_once('=').ok_or_else(|| {
                Failure::Usage(format!("--set expects KEY=VALUE, got '{}'", shown(item)))
            })?;
            if let Some(why) = secret_bearing(key, value) {
                let var = format!("{}{}", self.env_prefix, key.to_ascii_uppercase());
                let how = if key == "client_secret" {
                    format!(
                        "{0}CLIENT_SECRET, {0}CLIENT_SECRET_FILE or --secret-stdin",
                        self.env_prefix
                    )
                } else if key.starts_with(cloudauth::config::TOKEN_PARAM_PREFIX) {
                    format!("--set-file {key}=PATH")
                } else {
                    format!("{var} in the environment or --set-file {key}=PATH")
                };
                return Err(Failure::Usage(format!(
                    "--set {key}=... is refused: {why}, and a command line is visible to every \
                     user of the machine; give it with {how}"
                )));
            }
            cfg.set(key, value)?;
        }
        for item in &self.set_file {
            let (key, path) = item.split_once('=').ok_or_else(|| {
                Failure::Usage(format!(
                    "--set-file expects KEY=PATH, got '{}'",
                    shown(item)
                ))
            })?;
            let text = Zeroizing::new(std::fs::read_to_string(path).map_err(|e| {
                Failure::Local(format!("--set-file {key}: cannot read {path}: {e}"))
            })?);
            let value = text.strip_suffix('\n').unwrap_or(&text);
            cfg.set(key, value.strip_suffix('\r').unwrap_or(value))?;
        }
        if self.secret_stdin {
            let secret = read_secret_from_stdin()?;
            // Asked for explicitly: it wins over a secret file from the environment (the
            // library refuses both at once).
            cfg.set("client_secret_file", "")?;
            cfg.set("client_secret", &secret)?;
        }
        Ok(cfg)
    }
}

/// Why a `--set` value is a secret, if it is: a key whose values are secrets (a path to a
/// secret file is not one), a token_param named like one, or a URL with user info (a
/// password for redis_url, proxy credentials, any other URL key).
fn secret_bearing(key: &str, value: &str) -> Option<&'static str> {
    if key.ends_with("_file") {
        return None;
    }
    if key.contains("secret") {
        return Some("it is the client secret");
    }
    if let Some(name) = key.strip_prefix(cloudauth::config::TOKEN_PARAM_PREFIX) {
        let name = name.to_ascii_lowercase();
        if ["secret", "password", "token", "assertion", "key"]
            .iter()
            .any(|s| name.contains(s))
        {
            return Some("its name says it holds a credential");
        }
        return None;
    }
    let authority = value.split_once("://").map_or(value, |(_, rest)| rest);
    let authority = authority.split(['/', '?', '#']).next().unwrap_or("");
    if authority.contains('@') && (key.ends_with("_url") || key == "proxy" || key == "issuer") {
        return Some("its URL carries user info (a user name or password)");
    }
    None
}

fn shown(s: &str) -> String {
    s.chars().take(64).collect()
}

fn read_secret_from_stdin() -> Result<Zeroizing<String>, Failure> {
    let stdin = std::io::stdin();
    let mut line = Zeroizing::new(String::new());
    let read = if stdin.is_terminal() {
        eprint!("client secret: ");
        let _echo_off = EchoOff::new();
        let r = stdin.lock().read_line(&mut line);
        eprintln!();
        r
    } else {
        stdin.lock().take(MAX_SECRET_BYTES + 1).read_line(&mut line)
    };
    read.map_err(|e| Failure::Local(format!("--secret-stdin: cannot read stdin: {e}")))?;
    if line.len() as u64 > MAX_SECRET_BYTES {
        return Err(Failure::Usage(format!(
            "--secret-stdin: the secret is longer than {MAX_SECRET_BYTES} bytes"
        )));
    }
    let secret = line.strip_suffix('\n').unwrap_or(&line);
    let secret = secret.strip_suffix('\r').unwrap_or(secret);
    if secret.is_empty() {
        return Err(Failure::Usage(
            "--secret-stdin: stdin gave no secret".into(),
        ));
    }
    Ok(Zeroizing::new(secret.to_owned()))
}

/// Terminal echo off while the secret is typed; restored on drop.
struct EchoOff(Option<libc::termios>);

impl EchoOff {
    fn new() -> Self {
        // SAFETY: termios is plain data; tcgetattr fills it or fails.
        unsafe {
            let mut t: libc::termios = std::mem::zeroed();
            if libc::tcgetattr(0, &mut t) != 0 {
                return EchoOff(None);
            }
            let saved = t;
            t.c_lflag &= !libc::ECHO;
            libc::tcsetattr(0, libc::TCSANOW, &t);
            EchoOff(Some(saved))
        }
    }
}

impl Drop for EchoOff {
    fn drop(&mut self) {
        if let Some(saved) = self.0 {
            // SAFETY: restores the attributes read in new().
            unsafe { libc::tcsetattr(0, libc::TCSANOW, &saved) };
        }
    }
}
