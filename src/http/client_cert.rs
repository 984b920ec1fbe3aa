//! The client certificate of mutual TLS (RFC 8705): `client_cert_file` (PEM chain, leaf first)
//! and `client_key_file` (PEM PKCS#8, PKCS#1 RSA or SEC1 EC key), checked when the session is
//! made and read again at every token request, so replacing the files rotates the certificate.
//! The key is a secret: its file's bytes are zeroed after use, and messages name the key and
//! its path, never its contents (nor the PEM parser's own text, which may quote a line).

use crate::error::{quote_prefix, Error, Result};
use crate::secret::Secret;
use arc_swap::ArcSwap;
use ring::digest::{Context, SHA256};
use rustls::client::ResolvesClientCert;
use rustls::pki_types::{pem::PemObject, CertificateDer, PrivateKeyDer};
use rustls::sign::CertifiedKey;
use rustls::SignatureScheme;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use zeroize::{Zeroize, Zeroizing};

/// A session's client certificate and key, as last read.
pub struct ClientCert {
    cert_path: String,
    key_path: String,
    current: ArcSwap<Loaded>,
    /// Bumped when the files changed: clients built with an older certificate are rebuilt,
    /// so later connections present the new one.
    generation: AtomicU64,
}

struct Loaded {
    /// SHA-256 over both files: tells a change without keeping the key's bytes around.
    fingerprint: [u8; 32],
    key: Arc<CertifiedKey>,
}

impl ClientCert {
    /// The pair in `cert_path` and `key_path`: both readable, a certificate and the key that
    /// matches it.
    pub fn load(cert_path: String, key_path: String) -> Result<Arc<ClientCert>> {
        let loaded = read(&cert_path, &key_path)?;
        Ok(Arc::new(ClientCert {
            cert_path,
            key_path,
            current: ArcSwap::from_pointee(loaded),
            generation: AtomicU64::new(0),
        }))
    }

    /// Reads the files again (at each token request). When they changed, the new pair is
    /// checked and used for connections opened from now on; when they no longer load, the
    /// error names the key and the old pair stays.
    pub fn reload(&self) -> Result<()> {
        let files = Files::read(&self.cert_path, &self.key_path)?;
        if files.fingerprint == self.current.load().fingerprint {
            return Ok(());
        }
        let loaded = files.parse(&self.cert_path, &self.key_path)?;
        self.current.store(Arc::new(loaded));
        self.generation.fetch_add(1, Ordering::AcqRel);
        Ok(())
    }

    /// Changes whenever the certificate does.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// What seals the shared cache's entries in place of a client secret: a digest of the
    /// certificate and key, so only a process holding both can open them.
    pub fn sealing_secret(&self) -> Secret {
        let hex: String = self
            .current
            .load()
            .fingerprint
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        Secret::from(format!("cloudauth mtls {hex}"))
    }

    /// `base` presenting the current certificate. The config gets a session store of its own:
    /// a resumed TLS session carries the client authentication of the one it resumes, so it
    /// must never be shared with a client that does not present the certificate, nor outlive
    /// a rotation.
    pub fn tls_config(&self, base: &rustls::ClientConfig) -> rustls::ClientConfig {
        let mut tls = base.clone();
        tls.client_auth_cert_resolver = Arc::new(Present(self.current.load().key.clone()));
        tls.resumption = rustls::client::Resumption::default();
        tls
    }
}

/// Always offers the certificate: the server asked for one. Holds the private key, so its
/// Debug output (rustls wants one) names it only.
struct Present(Arc<CertifiedKey>);

impl std::fmt::Debug for Present {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Present(client certificate and key: ***)")
    }
}

impl ResolvesClientCert for Present {
    fn resolve(&self, _hints: &[&[u8]], _schemes: &[SignatureScheme]) -> Option<Arc<CertifiedKey>> {
        Some(self.0.clone())
    }

    fn has_certs(&self) -> bool {
        true
    }
}

fn read(cert_path: &str, key_path: &str) -> Result<Loaded> {
    Files::read(cert_path, key_path)?.parse(cert_path, key_path)
}

/// Both files' bytes (the key's zeroed when dropped) and their joint digest.
struct Files {
    fingerprint: [u8; 32],
    cert: Vec<u8>,
    key: Zeroizing<Vec<u8>>,
}

impl Files {
    fn read(cert_path: &str, key_path: &str) -> Result<Files> {
        let cert = std::fs::read(cert_path).map_err(|e| {
            Error::invalid(format!(
                "client_cert_file: cannot read '{}': {e}",
                shown(cert_path)
            ))
        })?;
        let key = Zeroizing::new(std::fs::read(key_path).map_err(|e| {
            Error::invalid(format!(
                "client_key_file: cannot read '{}': {e}",
                shown(key_path)
            ))
        })?);
        let mut digest = Context::new(&SHA256);
        digest.update(&(cert.len() as u64).to_be_bytes());
        digest.update(&cert);
        digest.update(&key);
        let mut fingerprint = [0u8; 32];
        fingerprint.copy_from_slice(digest.finish().as_ref());
        Ok(Files {
            fingerprint,
            cert,
            key,
        })
    }

    fn parse(self, cert_path: &str, key_path: &str) -> Result<Loaded> {
        let Files {
            fingerprint,
            cert: cert_pem,
            key: key_pem,
        } = self;
        let (cert_shown, key_shown) = (shown(cert_path), shown(key_path));
        let chain = CertificateDer::pem_slice_iter(&cert_pem)
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(|_| {
                Error::invalid(format!(
                    "client_cert_file: '{cert_shown}' is not a valid PEM file"
                ))
            })?;
        if chain.is_empty() {
            return Err(Error::invalid(format!(
                "client_cert_file: '{cert_shown}' holds no PEM certificate"
            )));
        }
        if is_encrypted(&key_pem) {
            return Err(Error::invalid(format!(
                "client_key_file: '{key_shown}' is encrypted; cloudauth needs the key unencrypted \
             (protect the file with its permissions)"
            )));
        }
        let mut der = match PrivateKeyDer::from_pem_slice(&key_pem) {
            Ok(der) => der,
            Err(rustls::pki_types::pem::Error::NoItemsFound) => {
                return Err(Error::invalid(format!(
                    "client_key_file: '{key_shown}' holds no PEM private key (PRIVATE KEY, \
                 RSA PRIVATE KEY or EC PRIVATE KEY)"
                )))
            }
            Err(_) => {
                return Err(Error::invalid(format!(
                    "client_key_file: '{key_shown}' is not a valid PEM file"
                )))
            }
        };
        drop(key_pem);
        // Borrowed, so that the one decoded copy of the key is the one zeroed here.
        let signing_key = rustls::crypto::ring::sign::any_supported_type(&der);
        der.zeroize();
        let signing_key = signing_key.map_err(|_| {
            Error::invalid(format!(
            "client_key_file: the key in '{key_shown}' is not a usable RSA, EC P-256, EC P-384 \
             or Ed25519 key"
        ))
        })?;
        let key = CertifiedKey::new(chain, signing_key);
        match key.keys_match() {
            Ok(()) | Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::Unknown)) => {}
            Err(rustls::Error::InconsistentKeys(_)) => {
                return Err(Error::invalid(format!(
                    "client_key_file: the key in '{key_shown}' does not match the certificate in \
                 client_cert_file '{cert_shown}'"
                )))
            }
            Err(_) => {
                return Err(Error::invalid(format!(
                "client_cert_file: the first certificate in '{cert_shown}' is not a valid X.509 \
                 certificate"
            )))
            }
        }
        Ok(Loaded {
            fingerprint,
            key: Arc::new(key),
        })
    }
}

/// The PEM texts' checks alone, for the fuzz target (src/fuzzing.rs).
pub(crate) fn parse_pem(cert: &[u8], key: &[u8]) -> Result<()> {
    let files = Files {
        fingerprint: [0; 32],
        cert: cert.to_vec(),
        key: Zeroizing::new(key.to_vec()),
    };
    files.parse("/fuzz/cert.pem", "/fuzz/key.pem").map(drop)
}

/// PKCS#8 `ENCRYPTED PRIVATE KEY`, or a traditional key with `Proc-Type: 4,ENCRYPTED`.
fn is_encrypted(pem: &[u8]) -> bool {
    let has = |needle: &[u8]| pem.windows(needle.len()).any(|w| w == needle);
    has(b"-----BEGIN ENCRYPTED PRIVATE KEY-----") || has(b"Proc-Type: 4,ENCRYPTED")
}

fn shown(path: &str) -> String {
    quote_prefix(path, 200)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encrypted_keys_are_recognised_in_both_encodings() {
        assert!(is_encrypted(
            b"-----BEGIN ENCRYPTED PRIVATE KEY-----\nMIIB\n-----END ENCRYPTED PRIVATE KEY-----\n"
        ));
        assert!(is_encrypted(
            b"-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-256-CBC,00\n"
        ));
        assert!(!is_encrypted(
            b"-----BEGIN PRIVATE KEY-----\nMIIB\n-----END PRIVATE KEY-----\n"
        ));
    }
}
