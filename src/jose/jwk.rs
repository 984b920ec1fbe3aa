//! Public keys as JWKs (RFC 7517), their RFC 7638 thumbprints, and a certificate's
//! `x5t#S256` (RFC 7515 §4.1.8) checked against the key it goes with.

use super::b64url;
use super::key::{find, read_secret_file, SigningKey};
use crate::error::{quote_prefix, Error, Result};
use ring::digest::{digest, SHA256};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::CertificateDer;

/// The public JWK of `key` with exactly the required members in lexicographic order, which
/// is both a valid JWK (the DPoP `jwk` header) and the RFC 7638 thumbprint input. `None` for
/// HMAC keys, which have no public half.
pub fn public_jwk(key: &SigningKey) -> Option<String> {
    if let Some((n, e)) = key.rsa_components() {
        return Some(format!(
            r#"{{"e":"{}","kty":"RSA","n":"{}"}}"#,
            b64url(&e),
            b64url(&n)
        ));
    }
    let curve = key.curve()?;
    let public = key.public_key_bytes()?;
    if curve == "Ed25519" {
        return Some(format!(
            r#"{{"crv":"Ed25519","kty":"OKP","x":"{}"}}"#,
            b64url(public)
        ));
    }
    // An uncompressed point: 0x04 || x || y.
    let coords = public.get(1..)?;
    let (x, y) = coords.split_at(coords.len() / 2);
    Some(format!(
        r#"{{"crv":"{curve}","kty":"EC","x":"{}","y":"{}"}}"#,
        b64url(x),
        b64url(y)
    ))
}

/// The RFC 7638 thumbprint (SHA-256, base64url) of `key`'s public JWK.
pub fn thumbprint(key: &SigningKey) -> Option<String> {
    public_jwk(key).map(|jwk| b64url(digest(&SHA256, jwk.as_bytes()).as_ref()))
}

/// The `x5t#S256` of the first certificate in the PEM file at `path` (named `what` in
/// messages), after checking that it carries `key`'s public key.
pub fn cert_thumbprint(what: &str, path: &str, key: &SigningKey) -> Result<String> {
    cert_thumbprint_pem(what, path, &read_secret_file(what, path)?, key)
}

/// [`cert_thumbprint`] of PEM text read from `path`.
pub fn cert_thumbprint_pem(what: &str, path: &str, pem: &[u8], key: &SigningKey) -> Result<String> {
    let shown = quote_prefix(path, 200);
    let cert = CertificateDer::from_pem_slice(pem)
        .map_err(|_| Error::invalid(format!("{what}: '{shown}' holds no PEM certificate")))?;
    // The certificate's subjectPublicKey holds exactly these bytes when it is the key's.
    let matches = key
        .public_key_bytes()
        .is_some_and(|public| find(cert.as_ref(), public));
    if !matches {
        return Err(Error::invalid(format!(
            "{what}: the certificate in '{shown}' does not match client_key_file's key"
        )));
    }
    Ok(b64url(digest(&SHA256, cert.as_ref()).as_ref()))
}
