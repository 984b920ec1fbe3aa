//! `cloudauth`: access tokens and authorized requests from the shell, a thin client of the
//! library's Rust API. One module per subcommand; `settings` builds the configuration and
//! `exit` maps failures to documented exit statuses.

mod completions;
mod curl;
mod events;
mod exit;
mod request;
mod settings;
mod token;

use clap::{Parser, Subcommand};
use exit::Failure;
use std::process::ExitCode;

const AFTER_HELP: &str = "\
Configuration: every library key K from the environment variable CLOUDAUTH_<K upper-case>
(CLOUDAUTH_CLIENT_ID, CLOUDAUTH_TOKEN_URL, ...), then --set K=V. The client secret comes only
from CLOUDAUTH_CLIENT_SECRET, CLOUDAUTH_CLIENT_SECRET_FILE or --secret-stdin, never from a flag.
token_cache=file is the default, so successive invocations share one token.

Exit status: 0 success; 1 a local failure (a file could not be read or written, curl could not
be started); 2 usage; 22 an HTTP status >= 400 with --fail; 100 + the library's result code for
a library failure: 101 invalid argument, 103 insecure URL, 104 network, 105 timeout,
106 credentials rejected, 107 token endpoint failing, 108 bad token response, 109 too large,
110 internal error. `cloudauth curl` exits with curl's own status once curl has run.";

#[derive(Parser)]
#[command(
    name = "cloudauth",
    version = exit::library_version(),
    about = "OAuth2 client-credentials tokens and authorized HTTP requests",
    after_help = AFTER_HELP,
    propagate_version = true
)]
struct Cli {
    #[command(flatten)]
    settings: settings::Settings,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Print a valid access token (fetched, refreshed or taken from the cache as needed)
    Token(token::Args),
    /// Send an authorized HTTP request through the library and print the response body
    Request(request::Args),
    /// Run curl with the Authorization header passed on its stdin (never in its argv)
    Curl(curl::Args),
    /// Print a shell completion script (e.g. `cloudauth completions bash > /etc/bash_completion.d/cloudauth`)
    Completions(completions::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let outcome = match cli.command {
        Command::Completions(args) => completions::run(&args),
        Command::Token(args) => run_with_session(&cli.settings, false, |s, _| token::run(s, &args)),
        Command::Request(args) => {
            let stdin_taken = cli.settings.secret_stdin();
            run_with_session(&cli.settings, args.verbose(), |s, _| {
                request::run(s, &args, stdin_taken)
            })
        }
        Command::Curl(args) => {
            let prefix = cli.settings.env_prefix();
            run_with_session(&cli.settings, false, |s, cfg| {
                curl::run(s, cfg, prefix, &args)
            })
        }
    };
    match outcome {
        Ok(status) => ExitCode::from(status),
        Err(failure) => failure.report(),
    }
}

/// `show_events`: the library's events are printed on stderr as they happen.
fn run_with_session(
    settings: &settings::Settings,
    show_events: bool,
    command: impl FnOnce(&cloudauth::Session, &cloudauth::Config) -> Result<u8, Failure>,
) -> Result<u8, Failure> {
    let mut cfg = settings.config()?;
    if show_events {
        cfg.events = events::to_stderr();
    }
    let session = cloudauth::Session::new(&cfg)?;
    command(&session, &cfg)
}
