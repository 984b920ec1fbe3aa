//! Exit statuses and how failures are reported: one line on stderr, a documented status.

use cloudauth::Error;
use std::process::ExitCode;

pub const OK: u8 = 0;
/// A local failure: a file could not be read or written, curl could not be started.
pub const LOCAL: u8 = 1;
/// Bad usage (also clap's status for a bad command line).
pub const USAGE: u8 = 2;
/// An HTTP status >= 400 with --fail, as curl does.
pub const HTTP_FAIL: u8 = 22;
/// A library failure exits with this plus its result code (CLOUDAUTH_ERR_TIMEOUT = 5 -> 105).
pub const LIBRARY_BASE: u8 = 100;

#[derive(Debug)]
pub enum Failure {
    /// The library's error: its one-line message, status 100 + code.
    Library(Error),
    Usage(String),
    Local(String),
    /// --fail on an HTTP error status.
    Http(String),
}

impl From<Error> for Failure {
    fn from(e: Error) -> Self {
        Failure::Library(e)
    }
}

impl Failure {
    pub fn status(&self) -> u8 {
        match self {
            Failure::Library(e) => LIBRARY_BASE.saturating_add(e.code as u8),
            Failure::Usage(_) => USAGE,
            Failure::Local(_) => LOCAL,
            Failure::Http(_) => HTTP_FAIL,
        }
    }

    pub fn report(&self) -> ExitCode {
        let message = match self {
            Failure::Library(e) => &e.message,
            Failure::Usage(m) | Failure::Local(m) | Failure::Http(m) => m,
        };
        eprintln!("cloudauth: {message}");
        ExitCode::from(self.status())
    }
}

/// Writes `bytes` to stdout. A reader that went away (`| head`) ends the command quietly with
/// status 0, as the rest of the output was not wanted; any other failure is reported.
pub fn write_stdout(bytes: &[u8], what: &str) -> Result<u8, Failure> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match out.write_all(bytes).and_then(|()| out.flush()) {
        Ok(()) => Ok(OK),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(OK),
        Err(e) => Err(Failure::Local(format!(
            "cannot write {what} to stdout: {e}"
        ))),
    }
}

/// The library's version string, as `cloudauth_version()` gives it to C.
pub fn library_version() -> &'static str {
    // SAFETY: cloudauth_version returns a static NUL-terminated ASCII string.
    unsafe { std::ffi::CStr::from_ptr(cloudauth::ffi::cloudauth_version()) }
        .to_str()
        .unwrap_or("unknown")
}
