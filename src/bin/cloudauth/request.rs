//! `cloudauth request`: one authorized request through the library (token, 401 resend,
//! timeouts and URL rules included), with curl's most used options.

use crate::exit::{Failure, OK};
use cloudauth::http::body::BodySource;
use cloudauth::http::header::HeaderMap;
use cloudauth::http::pipeline::BodySink;
use cloudauth::http::url_policy::redact_str;
use cloudauth::http::StatusCode;
use cloudauth::Session;
use std::io::{Read, Seek, SeekFrom, Write};
use std::mem::MaybeUninit;
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
///
/// Both bodies stream: `-d @FILE` and `-d @-` are read while the request is written (a file
/// is rewound for a resend after a 401 or a 307; stdin cannot be, so its 401 is the answer),
/// and the answer goes to stdout or `-o FILE` piece by piece as it arrives.
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
        match &body {
            Body::Bytes(b) if b.is_empty() => {}
            Body::Bytes(b) => eprintln!("> ({} body bytes)", b.len()),
            Body::Source(s) => match s.length() {
                Some(n) => eprintln!("> ({n} body bytes)"),
                None => eprintln!("> (body of unknown length, sent chunked)"),
            },
        }
    }
    let mut out = Out {
        verbose: args.verbose,
        fail: args.fail,
        path: args.output.as_ref(),
        to: None,
        failed: None,
        refused: None,
        gone: false,
    };
    let headers = args.headers.iter().map(String::as_str);
    let sent = match body {
        Body::Bytes(b) => session.request_stream(method, &args.url, headers, &b, &mut out),
        Body::Source(s) => session.request_source(method, &args.url, headers, s, Some(&mut out)),
    };
    if let Some(failure) = out.failed.take() {
        return Err(failure);
    }
    if out.gone {
        return Ok(OK);
    }
    sent?;
    if args.verbose {
        if let Ok(left) = session.token_expires_in() {
            eprintln!("* token expires in {} s", left.as_secs());
        }
    }
    if let Some(status) = out.refused {
        return Err(Failure::Http(format!(
            "HTTP {status} from {method} {shown_url}"
        )));
    }
    out.finish()?;
    Ok(OK)
}

/// A request body: given on the command line, or read from a file or stdin as it is sent.
enum Body {
    Bytes(Vec<u8>),
    Source(Box<dyn BodySource>),
}

fn read_body(data: Option<&str>, stdin_taken: bool) -> Result<Body, Failure> {
    let Some(data) = data else {
        return Ok(Body::Bytes(Vec::new()));
    };
    let Some(path) = data.strip_prefix('@') else {
        return Ok(Body::Bytes(data.as_bytes().to_vec()));
    };
    if path == "-" {
        if stdin_taken {
            return Err(Failure::Usage(
                "-d @- and --secret-stdin both want stdin; give the secret another way".into(),
            ));
        }
        return Ok(Body::Source(Box::new(Reader {
            from: From::Stdin(std::io::stdin()),
            what: "-d @-".into(),
            length: None,
        })));
    }
    let file = std::fs::File::open(path)
        .map_err(|e| Failure::Local(format!("-d @{path}: cannot read the file: {e}")))?;
    let meta = file
        .metadata()
        .map_err(|e| Failure::Local(format!("-d @{path}: cannot read the file: {e}")))?;
    // A regular file has a length and can be read again; a pipe or a device cannot.
    let length = meta.is_file().then_some(meta.len());
    Ok(Body::Source(Box::new(Reader {
        from: From::File(file),
        what: format!("-d @{path}"),
        length,
    })))
}

/// A body read from a file or stdin.
struct Reader {
    from: From,
    what: String,
    /// A regular file's: sent as Content-Length, and the file can be rewound.
    length: Option<u64>,
}

enum From {
    File(std::fs::File),
    Stdin(std::io::Stdin),
}

impl BodySource for Reader {
    fn length(&self) -> Option<u64> {
        self.length
    }

    fn read(&mut self, buf: &mut [MaybeUninit<u8>]) -> cloudauth::Result<usize> {
        // Zeroed here: `Read` takes initialized bytes.
        buf.fill(MaybeUninit::new(0));
        // SAFETY: every byte was just initialized.
        let buf = unsafe { &mut *(buf as *mut [MaybeUninit<u8>] as *mut [u8]) };
        loop {
            let read = match &mut self.from {
                From::File(f) => f.read(buf),
                From::Stdin(s) => s.read(buf),
            };
            match read {
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    return Err(cloudauth::Error::new(
                        cloudauth::Code::CLOUDAUTH_ERR_CANCELLED,
                        format!("{}: cannot read the body: {e}", self.what),
                    ))
                }
                Ok(n) => return Ok(n),
            }
        }
    }

    fn rewind(&mut self) -> bool {
        match &mut self.from {
            From::File(f) => self.length.is_some() && f.seek(SeekFrom::Start(0)).is_ok(),
            From::Stdin(_) => false,
        }
    }
}

/// Where the answer goes: its head to stderr with -v, its body to stdout or -o FILE (opened
/// at the head: with --fail and a status of 400 or more, nothing is written).
struct Out<'a> {
    verbose: bool,
    fail: bool,
    path: Option<&'a PathBuf>,
    to: Option<Box<dyn Write + Send>>,
    /// What went wrong on our side (the file, stdout), told in place of the request's error.
    failed: Option<Failure>,
    /// --fail: the status that made the body unwanted.
    refused: Option<u16>,
    /// stdout's reader went away (`| head`): the request stops quietly, as curl's does.
    gone: bool,
}

impl Out<'_> {
    fn stop(&mut self, failure: Failure) -> cloudauth::Error {
        self.failed = Some(failure);
        cloudauth::Error::new(cloudauth::Code::CLOUDAUTH_ERR_CANCELLED, "stopped")
    }

    fn finish(&mut self) -> Result<(), Failure> {
        match self.to.as_mut().map(|to| to.flush()) {
            Some(Err(e)) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(self.write_failed(e)),
            _ => Ok(()),
        }
    }

    fn write_failed(&self, e: std::io::Error) -> Failure {
        let to = self
            .path
            .map_or("stdout".into(), |p| p.display().to_string());
        Failure::Local(format!("cannot write the body to {to}: {e}"))
    }
}

impl BodySink for Out<'_> {
    fn head(&mut self, status: StatusCode, headers: &HeaderMap) -> cloudauth::Result<()> {
        if self.verbose {
            eprintln!("< HTTP {}", status.as_u16());
            for (name, value) in headers {
                eprintln!("< {name}: {}", String::from_utf8_lossy(value.as_bytes()));
            }
        }
        if self.fail && status.as_u16() >= 400 {
            self.refused = Some(status.as_u16());
            return Ok(());
        }
        self.to = Some(match self.path {
            None => Box::new(std::io::stdout()),
            Some(path) => match std::fs::File::create(path) {
                Ok(file) => Box::new(std::io::BufWriter::with_capacity(256 << 10, file)),
                Err(e) => return Err(self.stop(self.write_failed(e))),
            },
        });
        Ok(())
    }

    fn data(&mut self, piece: &[u8]) -> cloudauth::Result<()> {
        let Some(to) = self.to.as_mut() else {
            return Ok(()); // --fail: the body is not wanted
        };
        match to.write_all(piece) {
            Ok(()) => Ok(()),
            // The reader went away (`| head`): stop quietly, as curl does.
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {
                self.gone = true;
                Err(cloudauth::Error::new(
                    cloudauth::Code::CLOUDAUTH_ERR_CANCELLED,
                    "stdout closed",
                ))
            }
            Err(e) => {
                let failure = self.write_failed(e);
                Err(self.stop(failure))
            }
        }
    }
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
