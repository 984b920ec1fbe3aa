//! `cloudauth request`: one authorized request through the library (token, 401 resend,
//! timeouts and URL rules included), with curl's most used options.

use crate::exit::{Failure, OK};
use cloudauth::http::url_policy::redact_str;
use cloudauth::Session;
use std::io::Read;
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct Args {
    /// The HTTP method (default GET, or POST with -d)
    #[arg(short = 'X', long = "request", value_name = "METHOD")]
    method: Option<String>,

    /// A request header (repeatable). Authorization is added by the library
    #[arg(short = 'H', long = "header", value_name = "NAME: VALUE")]
    headers: Vec<String>,

    /// The request body: the text itself, @FILE for a file's bytes, @- for stdin
    #[arg(short = 'd', long = "data", value_name = "DATA|@FILE")]
    data: Option<String>,

    /// Write the body to FILE instead of stdout
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    output: Option<PathBuf>,

    /// Exit with status 22 and write no body when the HTTP status is 400 or more
    #[arg(short = 'f', long)]
    fail: bool,

    /// Show the request line, the library's events, the status and the response headers on
    /// stderr
    #[arg(short = 'v', long)]
    verbose: bool,

    /// An absolute http(s) URL, or a path joined to base_url
    url: String,
}

impl Args {
    pub fn verbose(&self) -> bool {
        self.verbose
    }
}

/// `stdin_taken`: --secret-stdin already read stdin, so `-d @-` cannot.
pub fn run(session: &Session, args: &Args, stdin_taken: bool) -> Result<u8, Failure> {
    let body = read_body(args.data.as_deref(), stdin_taken)?;
    let method = match (&args.method, &args.data) {
        (Some(m), _) => m.as_str(),
        (None, Some(_)) => "POST",
        (None, None) => "GET",
    };
    let shown_url = redact_str(&args.url);
    if args.verbose {
        eprintln!("> {method} {shown_url}");
        for h in &args.headers {
            eprintln!("> {}", shown_header(h));
        }
        eprintln!("> authorization: Bearer (hidden)");
        if !body.is_empty() {
            eprintln!("> ({} body bytes)", body.len());
        }
    }
    let response = session.request(
        method,
        &args.url,
        args.headers.iter().map(String::as_str),
        &body,
    )?;
    if args.verbose {
        eprintln!("< HTTP {}", response.status);
        for (name, value) in &response.headers {
            eprintln!("< {name}: {}", String::from_utf8_lossy(value.as_bytes()));
        }
        if let Ok(left) = session.token_expires_in() {
            eprintln!("* token expires in {} s", left.as_secs());
        }
    }
    if args.fail && response.status >= 400 {
        return Err(Failure::Http(format!(
            "HTTP {} from {method} {shown_url}",
            response.status
        )));
    }
    write_body(args.output.as_ref(), &response.body)?;
    Ok(OK)
}

fn read_body(data: Option<&str>, stdin_taken: bool) -> Result<Vec<u8>, Failure> {
    let Some(data) = data else {
        return Ok(Vec::new());
    };
    let Some(path) = data.strip_prefix('@') else {
        return Ok(data.as_bytes().to_vec());
    };
    if path == "-" {
        if stdin_taken {
            return Err(Failure::Usage(
                "-d @- and --secret-stdin both want stdin; give the secret another way".into(),
            ));
        }
        let mut body = Vec::new();
        std::io::stdin()
            .read_to_end(&mut body)
            .map_err(|e| Failure::Local(format!("-d @-: cannot read stdin: {e}")))?;
        return Ok(body);
    }
    std::fs::read(path)
        .map_err(|e| Failure::Local(format!("-d @{path}: cannot read the file: {e}")))
}

fn write_body(output: Option<&PathBuf>, body: &[u8]) -> Result<(), Failure> {
    let result = match output {
        Some(path) => std::fs::write(path, body).map_err(|e| (path.display().to_string(), e)),
        None => return crate::exit::write_stdout(body, "the body").map(|_| ()),
    };
    result.map_err(|(to, e)| Failure::Local(format!("cannot write the body to {to}: {e}")))
}

/// A user-given Authorization header is the user's own secret: not echoed by -v.
fn shown_header(h: &str) -> String {
    match h.split_once(':') {
        Some((name, _)) if name.trim().eq_ignore_ascii_case("authorization") => {
            format!("{}: (hidden)", name.trim())
        }
        _ => h.to_owned(),
    }
}
