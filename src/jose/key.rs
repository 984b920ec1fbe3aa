//! A signing key as a JWS needs it: loaded from a PEM file (PKCS#8, or the traditional RSA
//! PKCS#1 and EC SEC1 forms), generated (a DPoP session key), or an HMAC secret; with the
//! algorithm it signs with, checked to fit the key.

use crate::error::{quote_prefix, Error, Result};
use ring::rand::SystemRandom;
use ring::signature::{
    self, EcdsaKeyPair, Ed25519KeyPair, KeyPair as _, RsaKeyPair, ECDSA_P256_SHA256_FIXED_SIGNING,
    ECDSA_P384_SHA384_FIXED_SIGNING,
};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::PrivateKeyDer;
use zeroize::Zeroizing;

/// The JWS algorithms cloudauth signs with (RFC 7518, RFC 8037).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Alg {
    RS256,
    PS256,
    ES256,
    ES384,
    EdDSA,
    HS256,
}

impl Alg {
    pub fn name(self) -> &'static str {
        match self {
            Alg::RS256 => "RS256",
            Alg::PS256 => "PS256",
            Alg::ES256 => "ES256",
            Alg::ES384 => "ES384",
            Alg::EdDSA => "EdDSA",
            Alg::HS256 => "HS256",
        }
    }

    pub fn parse(name: &str) -> Option<Alg> {
        [
            Alg::RS256,
            Alg::PS256,
            Alg::ES256,
            Alg::ES384,
            Alg::EdDSA,
            Alg::HS256,
        ]
        .into_iter()
        .find(|a| a.name() == name)
    }
}

enum Kind {
    Rsa(RsaKeyPair),
    P256(EcdsaKeyPair),
    P384(EcdsaKeyPair),
    Ed25519(Ed25519KeyPair),
    Hmac(ring::hmac::Key),
}

/// A private key (or HMAC secret) and the algorithm it signs with. ring holds the key; the
/// PEM and DER it came from are zeroed as soon as it is parsed.
pub struct SigningKey {
    kind: Kind,
    alg: Alg,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SigningKey({}, ***)", self.alg.name())
    }
}

impl SigningKey {
    /// Reads `path` (named in messages as `what`, e.g. `client_key_file`) now: the file may be
    /// replaced at any time to rotate the key. `alg` `None` takes the key's usual algorithm.
    pub fn from_file(what: &str, path: &str, alg: Option<Alg>) -> Result<SigningKey> {
        let pem = read_secret_file(what, path)?;
        SigningKey::from_pem(what, path, &pem, alg)
    }

    /// Parses PEM text; `path` only names the file in messages, which never quote the text.
    pub fn from_pem(what: &str, path: &str, pem: &[u8], alg: Option<Alg>) -> Result<SigningKey> {
        let shown = quote_prefix(path, 200);
        let bad = |why: &str| Error::invalid(format!("{what}: '{shown}' {why}"));
        if contains(pem, b"ENCRYPTED") {
            return Err(bad(
                "holds an encrypted private key; give an unencrypted one (openssl pkcs8 -nocrypt)",
            ));
        }
        let der = PrivateKeyDer::from_pem_slice(pem)
            .map_err(|_| bad("holds no PEM private key (PKCS#8, RSA or EC)"))?;
        let rng = SystemRandom::new();
        let kind = match &der {
            PrivateKeyDer::Pkcs1(rsa) => RsaKeyPair::from_der(rsa.secret_pkcs1_der())
                .map(Kind::Rsa)
                .map_err(|e| bad(&format!("is not a usable RSA key ({e})")))?,
            PrivateKeyDer::Sec1(sec1) => sec1_key(sec1.secret_sec1_der(), &rng)
                .ok_or_else(|| bad("is not a usable P-256 or P-384 EC key"))?,
            PrivateKeyDer::Pkcs8(p8) => {
                pkcs8_key(p8.secret_pkcs8_der(), &rng).ok_or_else(|| {
                    bad("is not a usable RSA (2048 bits or more), P-256, P-384 or Ed25519 key")
                })?
            }
            _ => return Err(bad("holds a private key of an unknown kind")),
        };
        let natural = match kind {
            Kind::Rsa(_) => Alg::RS256,
            Kind::P256(_) => Alg::ES256,
            Kind::P384(_) => Alg::ES384,
            Kind::Ed25519(_) => Alg::EdDSA,
            Kind::Hmac(_) => Alg::HS256,
        };
        let alg = alg.unwrap_or(natural);
        let fits = match kind {
            Kind::Rsa(_) => matches!(alg, Alg::RS256 | Alg::PS256),
            _ => alg == natural,
        };
        if !fits {
            return Err(bad(&format!(
                "holds a {} key, which cannot sign {} (client_assertion_alg)",
                kind_name(&kind),
                alg.name()
            )));
        }
        let key = SigningKey { kind, alg };
        // ring checks an RSA signature before handing it out, and a key whose parts parse but
        // do not fit together fails there; found by fuzz/der_key_jwk. Refused here, once, so
        // `sign` never meets one.
        if let Kind::Rsa(_) = key.kind {
            key.try_sign(b"cloudauth key check").ok_or_else(|| {
                bad("is an RSA key whose parts do not fit together: it cannot sign")
            })?;
        }
        Ok(key)
    }

    /// An HMAC-SHA256 key (client_secret_jwt: the client secret is the key).
    pub fn hmac(secret: &[u8]) -> SigningKey {
        SigningKey {
            kind: Kind::Hmac(ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret)),
            alg: Alg::HS256,
        }
    }

    /// A new ES256 key that lives only in this process (a DPoP session key).
    pub fn generate_es256() -> SigningKey {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
            .expect("ring generates P-256 keys");
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng)
            .expect("ring reads back its own key");
        SigningKey {
            kind: Kind::P256(pair),
            alg: Alg::ES256,
        }
    }

    pub fn alg(&self) -> Alg {
        self.alg
    }

    /// The public key as it appears in a certificate's subjectPublicKey: RSAPublicKey DER, an
    /// uncompressed EC point, or the 32 Ed25519 bytes. `None` for HMAC.
    pub fn public_key_bytes(&self) -> Option<&[u8]> {
        Some(match &self.kind {
            Kind::Rsa(k) => k.public_key().as_ref(),
            Kind::P256(k) | Kind::P384(k) => k.public_key().as_ref(),
            Kind::Ed25519(k) => k.public_key().as_ref(),
            Kind::Hmac(_) => return None,
        })
    }

    pub(crate) fn rsa_components(&self) -> Option<(Vec<u8>, Vec<u8>)> {
        match &self.kind {
            Kind::Rsa(k) => {
                let c: signature::RsaPublicKeyComponents<Vec<u8>> = k.public().into();
                Some((c.n, c.e))
            }
            _ => None,
        }
    }

    /// `P-256`, `P-384` or `Ed25519` for the curve keys.
    pub(crate) fn curve(&self) -> Option<&'static str> {
        match self.kind {
            Kind::P256(_) => Some("P-256"),
            Kind::P384(_) => Some("P-384"),
            Kind::Ed25519(_) => Some("Ed25519"),
            _ => None,
        }
    }

    /// The JWS signature of `input` (ECDSA as the fixed-size r||s JWS wants).
    pub fn sign(&self, input: &[u8]) -> Vec<u8> {
        self.try_sign(input)
            .expect("a key that signed when it was loaded (from_pem) signs")
    }

    fn try_sign(&self, input: &[u8]) -> Option<Vec<u8>> {
        let rng = SystemRandom::new();
        match &self.kind {
            Kind::Rsa(k) => {
                let padding: &'static dyn signature::RsaEncoding = match self.alg {
                    Alg::PS256 => &signature::RSA_PSS_SHA256,
                    _ => &signature::RSA_PKCS1_SHA256,
                };
                let mut out = vec![0u8; k.public().modulus_len()];
                k.sign(padding, &rng, input, &mut out).ok()?;
                Some(out)
            }
            Kind::P256(k) | Kind::P384(k) => Some(k.sign(&rng, input).ok()?.as_ref().to_vec()),
            Kind::Ed25519(k) => Some(k.sign(input).as_ref().to_vec()),
            Kind::Hmac(k) => Some(ring::hmac::sign(k, input).as_ref().to_vec()),
        }
    }

    /// A compact JWS: `header` and `claims` are JSON objects as text.
    pub fn sign_jws(&self, header: &str, claims: &str) -> String {
        let mut out = super::b64url(header.as_bytes());
        out.push('.');
        out.push_str(&super::b64url(claims.as_bytes()));
        let signature = self.sign(out.as_bytes());
        out.push('.');
        out.push_str(&super::b64url(&signature));
        out
    }
}

/// A key or certificate file's bytes, zeroed when dropped; the message names the key, never
/// the contents.
pub(crate) fn read_secret_file(what: &str, path: &str) -> Result<Zeroizing<Vec<u8>>> {
    std::fs::read(path).map(Zeroizing::new).map_err(|e| {
        Error::invalid(format!(
            "{what}: cannot read '{}': {e}",
            quote_prefix(path, 200)
        ))
    })
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

pub(crate) fn find(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && contains(haystack, needle)
}

fn kind_name(kind: &Kind) -> &'static str {
    match kind {
        Kind::Rsa(_) => "RSA",
        Kind::P256(_) => "EC P-256",
        Kind::P384(_) => "EC P-384",
        Kind::Ed25519(_) => "Ed25519",
        Kind::Hmac(_) => "HMAC",
    }
}

fn pkcs8_key(der: &[u8], rng: &SystemRandom) -> Option<Kind> {
    if let Ok(k) = RsaKeyPair::from_pkcs8(der) {
        return Some(Kind::Rsa(k));
    }
    if let Ok(k) = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, der, rng) {
        return Some(Kind::P256(k));
    }
    if let Ok(k) = EcdsaKeyPair::from_pkcs8(&ECDSA_P384_SHA384_FIXED_SIGNING, der, rng) {
        return Some(Kind::P384(k));
    }
    Ed25519KeyPair::from_pkcs8_maybe_unchecked(der)
        .ok()
        .map(Kind::Ed25519)
}

/// ring reads EC keys only as PKCS#8, so a SEC1 key is wrapped into one, as rustls does:
/// SEQUENCE { INTEGER 0, SEQUENCE { id-ecPublicKey, curve }, OCTET STRING { sec1 } }.
fn sec1_key(sec1: &[u8], rng: &SystemRandom) -> Option<Kind> {
    const P256: &[u8] = b"\x02\x01\x00\x30\x13\x06\x07\x2a\x86\x48\xce\x3d\x02\x01\x06\x08\x2a\x86\x48\xce\x3d\x03\x01\x07";
    const P384: &[u8] =
        b"\x02\x01\x00\x30\x10\x06\x07\x2a\x86\x48\xce\x3d\x02\x01\x06\x05\x2b\x81\x04\x00\x22";
    let octets = der_wrap(0x04, &[sec1]);
    for (prefix, alg, p256) in [
        (P256, &ECDSA_P256_SHA256_FIXED_SIGNING, true),
        (P384, &ECDSA_P384_SHA384_FIXED_SIGNING, false),
    ] {
        let pkcs8 = der_wrap(0x30, &[prefix, &octets]);
        if let Ok(k) = EcdsaKeyPair::from_pkcs8(alg, &pkcs8, rng) {
            return Some(if p256 { Kind::P256(k) } else { Kind::P384(k) });
        }
    }
    None
}

/// A DER tag-length-value around the concatenated `parts`; zeroed when dropped (it holds the
/// private key).
fn der_wrap(tag: u8, parts: &[&[u8]]) -> Zeroizing<Vec<u8>> {
    let len: usize = parts.iter().map(|p| p.len()).sum();
    let mut out = Zeroizing::new(Vec::with_capacity(len + 6));
    out.push(tag);
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let skip = bytes.iter().take_while(|b| **b == 0).count();
        out.push(0x80 | (bytes.len() - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
    for p in parts {
        out.extend_from_slice(p);
    }
    out
}
