//! The small part of JOSE the token endpoint and DPoP need: signing keys loaded from PEM
//! (`key`), compact JWS signing (RFC 7515), public JWKs with their RFC 7638 thumbprints and a
//! certificate's `x5t#S256` (`jwk`). All signature math is ring's.

pub mod jwk;
pub mod key;

pub use key::{Alg, SigningKey};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;

/// base64url without padding, as every JOSE member is encoded.
pub fn b64url(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// A fresh random identifier (128 bits, base64url): a JWT's `jti`.
pub fn random_id() -> String {
    let mut bytes = [0u8; 16];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes)
        .expect("the system random source works");
    b64url(&bytes)
}

/// Seconds since the Unix epoch, for `iat` and `exp`.
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
