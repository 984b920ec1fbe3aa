//! The system's trust store, read once per process and only when the first TLS connection
//! needs it (a session that talks plain http to loopback never pays for it).
//!
//! Where the roots come from is what `rustls-native-certs` reads on Linux: `SSL_CERT_FILE` and
//! `SSL_CERT_DIR` when set, else the bundle file and directories `openssl-probe` finds (Debian:
//! `/etc/ssl/certs/ca-certificates.crt` and `/etc/ssl/certs`). How they are read is ours, in two
//! stages. That crate decodes every PEM block with a constant-time base64 decoder (meant for
//! private keys; roots are public), and reads the bundle and then every file of the directory,
//! which on Debian holds the same roots again: 19 M instructions and ~1,000 system calls, ~90 %
//! of a cold start. Here:
//! - [`bundle`]: the bundle file alone, one read, decoded with the `base64` crate's ordinary
//!   decoder. Every certificate check tries these roots first.
//! - [`system`]: the bundle and the directories, read only when a check fails with the bundle's
//!   roots (or there is no bundle file). More roots can only make more chains valid, so a chain
//!   that the bundle's roots accept is one the whole store accepts, and a rejection is final
//!   only once the whole store rejected it too.
//!
//! Unreadable files and blocks are skipped, as every TLS client does.

use rustls::pki_types::CertificateDer;
use rustls::RootCertStore;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

static BUNDLE: OnceLock<Arc<RootCertStore>> = OnceLock::new();
static SYSTEM: OnceLock<Arc<RootCertStore>> = OnceLock::new();

/// The roots of the system's bundle file, parsed on first use.
pub fn bundle() -> Arc<RootCertStore> {
    BUNDLE.get_or_init(|| store(load(false))).clone()
}

/// All the system's roots (bundle and directories), parsed on first use.
pub fn system() -> Arc<RootCertStore> {
    SYSTEM.get_or_init(|| store(load(true))).clone()
}

/// Whether this process has read any of the system's roots yet (tests look).
pub fn loaded() -> bool {
    BUNDLE.get().is_some() || SYSTEM.get().is_some()
}

/// Whether it has read the whole store, directories included (tests look).
pub fn whole_store_loaded() -> bool {
    SYSTEM.get().is_some()
}

fn store(mut certs: Vec<CertificateDer<'static>>) -> Arc<RootCertStore> {
    // The directory repeats the bundle's roots (Debian): each once.
    certs.sort_unstable_by(|a, b| a.as_ref().cmp(b.as_ref()));
    certs.dedup();
    let mut roots = RootCertStore::empty();
    roots.add_parsable_certificates(certs);
    Arc::new(roots)
}

/// The bundle file's certificates, and with `dirs` the directories' too.
#[cfg(all(unix, not(target_os = "macos")))]
fn load(dirs: bool) -> Vec<CertificateDer<'static>> {
    use std::os::unix::fs::MetadataExt;
    let (file, cert_dirs) = locations();
    let mut certs = Vec::new();
    let mut seen_files = std::collections::HashSet::new();
    let mut visit = |path: &Path, certs: &mut Vec<_>| {
        // A hashed name in a directory is a symlink to a file already read: read each once.
        match std::fs::metadata(path) {
            Ok(m) if m.is_file() && seen_files.insert((m.dev(), m.ino())) => {
                if let Ok(pem) = std::fs::read(path) {
                    add_pem(&pem, certs);
                }
            }
            _ => {}
        }
    };
    if let Some(file) = &file {
        visit(file, &mut certs);
    }
    if dirs || file.is_none() {
        for dir in cert_dirs {
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            for entry in entries.flatten() {
                visit(&entry.path(), &mut certs);
            }
        }
    }
    certs
}

/// Elsewhere the platform's own store, through `rustls-native-certs`.
#[cfg(not(all(unix, not(target_os = "macos"))))]
fn load(_dirs: bool) -> Vec<CertificateDer<'static>> {
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

/// Appends the `CERTIFICATE` blocks of a PEM file (other blocks, and text around them, are
/// skipped; a block that is not base64 too).
fn add_pem(pem: &[u8], certs: &mut Vec<CertificateDer<'static>>) {
    use base64::Engine;
    const BEGIN: &[u8] = b"-----BEGIN CERTIFICATE-----";
    const END: &[u8] = b"-----END CERTIFICATE-----";
    let mut text = Vec::new();
    let mut rest = pem;
    while let Some(start) = memchr::memmem::find(rest, BEGIN) {
        let body = &rest[start + BEGIN.len()..];
        let Some(len) = memchr::memmem::find(body, END) else {
            return;
        };
        rest = &body[len + END.len()..];
        // Line by line: base64 without the line breaks (and stray blanks at line ends).
        text.clear();
        let mut block = &body[..len];
        while !block.is_empty() {
            let end = memchr::memchr(b'\n', block).unwrap_or(block.len());
            text.extend_from_slice(block[..end].trim_ascii());
            block = block.get(end + 1..).unwrap_or_default();
        }
        if let Ok(der) = base64::engine::general_purpose::STANDARD.decode(&text) {
            certs.push(CertificateDer::from(der));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls::pki_types::pem::PemObject;

    /// The same certificates as rustls' own PEM reader finds.
    #[test]
    fn reads_a_bundle_as_rustls_does() {
        let one = "-----BEGIN CERTIFICATE-----\r\nMAMCAQE=\r\n-----END CERTIFICATE-----\r\n";
        let two = "junk\n-----BEGIN CERTIFICATE-----\nMAQCAgEB\n-----END CERTIFICATE-----\n";
        let key = "-----BEGIN PRIVATE KEY-----\nMAMCAQE=\n-----END PRIVATE KEY-----\n";
        let bad = "-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n";
        let bundle = format!("{one}{key}{two}{bad}{one}");
        let mut certs = Vec::new();
        add_pem(bundle.as_bytes(), &mut certs);
        let theirs: Vec<_> = CertificateDer::pem_slice_iter(format!("{one}{two}{one}").as_bytes())
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(certs, theirs);
        // A truncated block ends the file.
        add_pem(b"-----BEGIN CERTIFICATE-----\nMAMCAQI=\n", &mut certs);
        assert_eq!(certs.len(), 3);
    }

    /// This machine's store: the same roots as `rustls-native-certs` loads.
    #[test]
    fn the_system_store_matches_rustls_native_certs() {
        let mut theirs = rustls_native_certs::load_native_certs().certs;
        theirs.sort_by(|a, b| a.as_ref().cmp(b.as_ref()));
        theirs.dedup();
        let mut ours = load(true);
        ours.sort_by(|a, b| a.as_ref().cmp(b.as_ref()));
        ours.dedup();
        assert_eq!(ours.len(), theirs.len());
        assert!(ours == theirs, "the decoded roots differ");
        assert_eq!(system().len(), theirs.len());
        // Debian's bundle holds every root of its directory.
        assert!(!bundle().is_empty() && bundle().len() <= system().len());
    }
}
