//! The server certificate check of every TLS connection: rustls' own WebPKI verifier, built at
//! the first check rather than when the session is made, so that making a session never reads
//! the system's trust store. Sessions without `ca_file` share one verifier (and so one parsed
//! store); a session with `ca_file` has its own, the shared roots plus its own.
//!
//! A chain is checked against the bundle file's roots first and, only when they reject it,
//! against the whole system store (see `roots`): same verdicts, without reading the
//! certificate directory in the common case.

use crate::tls::roots;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, RootCertStore, SignatureScheme};
use std::sync::{Arc, OnceLock};

#[derive(Debug)]
pub struct Lazy {
    provider: Arc<CryptoProvider>,
    /// `ca_file`'s roots, checked when the session was made.
    extra: RootCertStore,
    /// Against the bundle's roots, and against the whole store.
    bundle: OnceLock<Result<Arc<WebPkiServerVerifier>, String>>,
    system: OnceLock<Result<Arc<WebPkiServerVerifier>, String>>,
}

/// The verifier for a session: the shared one, or with `extra` roots one of its own.
pub fn for_session(extra: RootCertStore, provider: &Arc<CryptoProvider>) -> Arc<Lazy> {
    static SHARED: OnceLock<Arc<Lazy>> = OnceLock::new();
    if extra.is_empty() {
        return SHARED.get_or_init(|| Lazy::new(extra, provider)).clone();
    }
    Lazy::new(extra, provider)
}

impl Lazy {
    fn new(extra: RootCertStore, provider: &Arc<CryptoProvider>) -> Arc<Lazy> {
        Arc::new(Lazy {
            provider: provider.clone(),
            extra,
            bundle: OnceLock::new(),
            system: OnceLock::new(),
        })
    }

    /// The verifier against the bundle's roots (`whole`: the whole store's), plus `extra`.
    fn verifier(&self, whole: bool) -> Result<&Arc<WebPkiServerVerifier>, rustls::Error> {
        let cell = if whole { &self.system } else { &self.bundle };
        cell.get_or_init(|| {
            let system = if whole {
                roots::system()
            } else {
                roots::bundle()
            };
            let roots = if self.extra.is_empty() {
                system
            } else {
                let mut all = (*system).clone();
                all.extend(self.extra.roots.iter().cloned());
                Arc::new(all)
            };
            WebPkiServerVerifier::builder_with_provider(roots, self.provider.clone())
                .build()
                .map_err(|e| {
                    format!(
                        "no root certificate to check the server's with ({e}): \
                         the system trust store is empty and no ca_file is set"
                    )
                })
        })
        .as_ref()
        .map_err(|e| rustls::Error::General(e.clone()))
    }
}

impl ServerCertVerifier for Lazy {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let check = |whole| {
            self.verifier(whole)?.verify_server_cert(
                end_entity,
                intermediates,
                server_name,
                ocsp_response,
                now,
            )
        };
        let first = check(false);
        if first.is_ok() || roots::system().len() == roots::bundle().len() {
            return first;
        }
        check(true)
    }

    // The handshake signatures need no roots: checked as WebPkiServerVerifier checks them.
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}
