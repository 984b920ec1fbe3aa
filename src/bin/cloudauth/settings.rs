//! The configuration every subcommand starts from: the tool's defaults, the environment
//! (the library's `from_env` rules), `--set KEY=VALUE`, and the secret from stdin.

use crate::exit::Failure;
use clap::Args;
use cloudauth::config::KEYS;
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

    pub fn config(&self) -> Result<Config, Failure> {
        let mut cfg = Config::default();
        // Successive invocations share one token. The key arrives with the shared caches;
        // until the library knows it, the tool runs with the in-memory cache.
        if let Err(e) = cfg.set("token_cache", "file") {
            if KEYS.contains(&"token_cache") {
                return Err(e.into());
            }
        }
        cfg.set_from_env(Some(&self.env_prefix))?;
        for item in &self.set {
            let (key, value) = item.split_once('=').ok_or_else(|| {
                Failure::Usage(format!("--set expects KEY=VALUE, got '{}'", shown(item)))
            })?;
            if is_secret_key(key) {
                return Err(Failure::Usage(format!(
                    "--set {key}=... is refused: a command line is visible to every user of the \
                     machine; give the secret in {}CLIENT_SECRET, {}CLIENT_SECRET_FILE or with --secret-stdin",
                    self.env_prefix, self.env_prefix
                )));
            }
            cfg.set(key, value)?;
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

/// Keys whose values are secrets (a path to a secret file is not one).
fn is_secret_key(key: &str) -> bool {
    key.contains("secret") && !key.ends_with("_file")
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
