//! What each transfer ended with, as curl reports it through `--write-out` on its stderr: a
//! line with a random marker, taken out of the stderr passed on to the user.

use std::io::{Read, Write};

/// One transfer: the final status, the URL it started at and the URL that answered.
pub struct Transfer {
    pub status: u16,
    pub first_url: String,
    pub final_url: String,
}

pub struct Marker(String);

impl Marker {
    pub fn new() -> Marker {
        let mut bytes = [0u8; 8];
        let random = std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut bytes));
        if random.is_err() {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default();
            bytes = (now.as_nanos() as u64 ^ u64::from(std::process::id())).to_le_bytes();
        }
        let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        Marker(format!("cloudauth-transfer-{hex} "))
    }

    /// The `--write-out` format: the user's own, then the marker line on stderr.
    pub fn write_out(&self, user_format: Option<&str>) -> String {
        format!(
            "{}%{{stderr}}{}%{{response_code}} %{{url}} %{{url_effective}}\\n",
            user_format.unwrap_or(""),
            self.0
        )
    }

    /// Copies `from` to `to` as it arrives, without the marker lines; returns the transfers.
    pub fn filter(&self, mut from: impl Read, mut to: impl Write) -> Vec<Transfer> {
        let marker = self.0.as_bytes();
        let mut transfers = Vec::new();
        let mut held: Vec<u8> = Vec::new();
        let mut chunk = [0u8; 8192];
        loop {
            let n = match from.read(&mut chunk) {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            held.extend_from_slice(&chunk[..n]);
            loop {
                if let Some(at) = find(&held, marker) {
                    let _ = to.write_all(&held[..at]);
                    let Some(end) = held[at..].iter().position(|b| *b == b'\n') else {
                        held.drain(..at);
                        break;
                    };
                    let line = String::from_utf8_lossy(&held[at + marker.len()..at + end]);
                    if let Some(t) = parse(&line) {
                        transfers.push(t);
                    }
                    held.drain(..at + end + 1);
                } else {
                    // Held back: an end that may be the start of a marker.
                    let keep = (1..marker.len().min(held.len() + 1))
                        .rev()
                        .find(|&k| held.ends_with(&marker[..k]))
                        .unwrap_or(0);
                    let _ = to.write_all(&held[..held.len() - keep]);
                    held.drain(..held.len() - keep);
                    break;
                }
            }
            let _ = to.flush();
        }
        let _ = to.write_all(&held);
        let _ = to.flush();
        transfers
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn parse(line: &str) -> Option<Transfer> {
    let mut parts = line.split(' ');
    Some(Transfer {
        status: parts.next()?.parse().ok()?,
        first_url: parts.next()?.to_owned(),
        final_url: parts.next()?.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marker_lines_are_taken_out_in_any_chunking() {
        let m = Marker("M-1 ".into());
        let text = b"progress\rM-1 401 http://a/ http://a/x\nrest M-1 200 u v\ntail M-";
        let mut out = Vec::new();
        struct Slow<'a>(&'a [u8]);
        impl Read for Slow<'_> {
            fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
                let n = self.0.len().min(3).min(buf.len());
                buf[..n].copy_from_slice(&self.0[..n]);
                self.0 = &self.0[n..];
                Ok(n)
            }
        }
        let got = m.filter(Slow(text), &mut out);
        assert_eq!(String::from_utf8(out).unwrap(), "progress\rrest tail M-");
        assert_eq!(got.len(), 2);
        assert_eq!(
            (got[0].status, got[0].final_url.as_str()),
            (401, "http://a/x")
        );
    }
}
