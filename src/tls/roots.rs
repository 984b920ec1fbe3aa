//! The system's trust store, read once per process and only when the first TLS connection
//! needs it (a session that talks plain http to loopback never pays for it).
//!
//! Where the roots come from is what `rustls-native-certs` reads on Linux: `SSL_CERT_FILE` and
//! `SSL_CERT_DIR` when set, else the bundle file and directories `openssl-probe` finds (Debian:
//! `/etc/ssl/certs/ca-certificates.crt` and `/etc/ssl/certs`). How they are decoded is ours:
//! that crate decodes every PEM block with a constant-time base64 decoder (meant for private
//! keys; roots are public) and decodes each root twice on Debian, once from the bundle and once
//! from its file in the directory, which was ~90 % of a cold start. Here a block whose text was
//! already seen is skipped before decoding, and the rest go through the `base64` crate's
//! ordinary decoder. Unreadable files and blocks are skipped, as every TLS client does.

use rustls::pki_types::CertificateDer;
use rustls::RootCertStore;
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

static SYSTEM: OnceLock<Arc<RootCertStore>> = OnceLock::new();

/// The system's roots, parsed on first use.
pub fn system() -> Arc<RootCertStore> {
    SYSTEM
        .get_or_init(|| {
            let mut roots = RootCertStore::empty();
            roots.add_parsable_certificates(load());
            Arc::new(roots)
        })
        .clone()
}

/// Whether this process has read the system's roots yet (tests and benchmarks look).
pub fn loaded() -> bool {
    SYSTEM.get().is_some()
}

#[cfg(all(unix, not(target_os = "macos")))]
fn load() -> Vec<CertificateDer<'static>> {
    let (file, dirs) = locations();
    let mut found = Found::default();
    let mut seen_files = HashSet::new();
    let mut visit = |path: &Path, found: &mut Found| {
        use std::os::unix::fs::MetadataExt;
        // A hashed name in the directory is a symlink to a file already read: read each once.
        match std::fs::metadata(path) {
            Ok(m) if m.is_file() && seen_files.insert((m.dev(), m.ino())) => {
                if let Ok(pem) = std::fs::read(path) {
                    found.add_pem(&pem);
                }
            }
            _ => {}
        }
    };
    if let Some(file) = file {
        visit(&file, &mut found);
    }
    for dir in dirs {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            visit(&entry.path(), &mut found);
        }
    }
    found.certs
}

/// Elsewhere the platform's own store, through `rustls-native-certs`.
#[cfg(not(all(unix, not(target_os = "macos"))))]
fn load() -> Vec<CertificateDer<'static>> {
    rustls_native_certs::load_native_certs().certs
}

/// The bundle file and directories to read: `rustls-native-certs`' rules (the variables win,
/// else what `openssl-probe` finds).
#[cfg(all(unix, not(target_os = "macos")))]
fn locations() -> (Option<PathBuf>, Vec<PathBuf>) {
    let file = std::env::var_os("SSL_CERT_FILE").map(PathBuf::from);
    let dirs: Vec<PathBuf> = std::env::var_os("SSL_CERT_DIR")
        .map(|d| {
            std::env::split_paths(&d)
                .filter(|p| !p.as_os_str().is_empty())
                .collect()
        })
        .unwrap_or_default();
    if file.is_some() || !dirs.is_empty() {
        return (file, dirs);
    }
    let probed = openssl_probe::probe();
    (probed.cert_file, probed.cert_dir)
}

/// Certificates decoded so far, and the text of every block seen.
#[derive(Default)]
struct Found {
    certs: Vec<CertificateDer<'static>>,
    seen: HashSet<Vec<u8>>,
}

impl Found {
    /// Adds the `CERTIFICATE` blocks of a PEM file whose text is new.
    fn add_pem(&mut self, pem: &[u8]) {
        use base64::Engine;
        const BEGIN: &[u8] = b"-----BEGIN CERTIFICATE-----";
        const END: &[u8] = b"-----END CERTIFICATE-----";
        let mut rest = pem;
        while let Some(start) = find(rest, BEGIN) {
            let body = &rest[start + BEGIN.len()..];
            let Some(len) = find(body, END) else {
                return;
            };
            rest = &body[len + END.len()..];
            let text: Vec<u8> = body[..len]
                .iter()
                .copied()
                .filter(|b| !b.is_ascii_whitespace())
                .collect();
            if self.seen.contains(&text) {
                continue;
            }
            if let Ok(der) = base64::engine::general_purpose::STANDARD.decode(&text) {
                self.certs.push(CertificateDer::from(der));
            }
            self.seen.insert(text);
        }
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    memchr::memmem::find(haystack, needle)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls::pki_types::pem::PemObject;

    /// The same certificates as rustls' own PEM reader finds, each once.
    #[test]
    fn reads_a_bundle_as_rustls_does_and_skips_repeats() {
        let one = "-----BEGIN CERTIFICATE-----\r\nMAMCAQE=\r\n-----END CERTIFICATE-----\r\n";
        let two = "junk\n-----BEGIN CERTIFICATE-----\nMAQCAgEB\n-----END CERTIFICATE-----\n";
        let key = "-----BEGIN PRIVATE KEY-----\nMAMCAQE=\n-----END PRIVATE KEY-----\n";
        let bad = "-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n";
        let bundle = format!("{one}{key}{two}{bad}{one}");
        let mut found = Found::default();
        found.add_pem(bundle.as_bytes());
        found.add_pem(two.as_bytes());
        let theirs: Vec<_> = CertificateDer::pem_slice_iter(format!("{one}{two}").as_bytes())
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(found.certs, theirs);
        // A truncated block ends the file.
        found.add_pem(b"-----BEGIN CERTIFICATE-----\nMAMCAQI=\n");
        assert_eq!(found.certs.len(), 2);
    }

    /// This machine's store: the same roots as `rustls-native-certs` loads.
    #[test]
    fn the_system_store_matches_rustls_native_certs() {
        let mut theirs = rustls_native_certs::load_native_certs().certs;
        theirs.sort_by(|a, b| a.as_ref().cmp(b.as_ref()));
        theirs.dedup();
        let mut ours = load();
        ours.sort_by(|a, b| a.as_ref().cmp(b.as_ref()));
        assert_eq!(ours.len(), theirs.len());
        assert!(ours == theirs, "the decoded roots differ");
        assert!(!system().is_empty());
    }
}
