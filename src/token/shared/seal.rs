//! The sealing of shared-cache entries: ChaCha20-Poly1305 under a key derived (HKDF-SHA256)
//! from the client secret and the entry's cache key. A reader without the secret learns
//! nothing (not even the token's length to the byte: it is padded), a process with another
//! secret fails to open the entry, and an entry copied under another key fails too (the key
//! is both HKDF info and AAD).

use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, CHACHA20_POLY1305, NONCE_LEN};
use ring::hkdf::{Salt, HKDF_SHA256};
use ring::rand::{SecureRandom, SystemRandom};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// First byte of a sealed entry: the format, so a later one is refused rather than misread.
const VERSION: u8 = 1;
const SALT: &[u8] = b"cloudauth shared token cache v1";
/// Token values are padded to a multiple of this before sealing.
const PAD: usize = 256;
/// Entries above this are refused unread (a token is a few KiB). A function, not a `pub`
/// const, which cbindgen would put into the C header.
pub(super) fn max_sealed() -> usize {
    1 << 20
}

/// What a shared entry holds: the token and its wall-clock deadlines (ms since the epoch), so
/// any process, on any host, can tell whether it is still good.
#[derive(Clone, PartialEq, Eq)]
pub struct Entry {
    pub token: String,
    pub refresh_at_ms: u64,
    pub expires_at_ms: u64,
}

impl std::fmt::Debug for Entry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Entry")
            .field("token", &"***")
            .field("refresh_at_ms", &self.refresh_at_ms)
            .field("expires_at_ms", &self.expires_at_ms)
            .finish()
    }
}

pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_millis() as u64
}

pub struct Sealer {
    key: LessSafeKey,
    aad: Vec<u8>,
    rng: SystemRandom,
}

impl Sealer {
    /// `secret` is the client secret; `cache_key` names the entry.
    pub fn new(secret: &[u8], cache_key: &str) -> Sealer {
        let prk = Salt::new(HKDF_SHA256, SALT).extract(secret);
        let info = [cache_key.as_bytes()];
        let okm = prk
            .expand(&info, &CHACHA20_POLY1305)
            .expect("32 bytes is within HKDF-SHA256's output limit");
        Sealer {
            key: LessSafeKey::new(UnboundKey::from(okm)),
            aad: cache_key.as_bytes().to_vec(),
            rng: SystemRandom::new(),
        }
    }

    /// `VERSION || nonce || ChaCha20-Poly1305(refresh_at_ms || expires_at_ms || len || token || padding)`.
    pub fn seal(&self, entry: &Entry) -> Result<Vec<u8>, String> {
        let token = entry.token.as_bytes();
        let len = u32::try_from(token.len()).map_err(|_| "the token is too long".to_string())?;
        let mut plain = Vec::with_capacity(20 + token.len() + PAD);
        plain.extend_from_slice(&entry.refresh_at_ms.to_le_bytes());
        plain.extend_from_slice(&entry.expires_at_ms.to_le_bytes());
        plain.extend_from_slice(&len.to_le_bytes());
        plain.extend_from_slice(token);
        plain.resize(plain.len().div_ceil(PAD) * PAD, 0);
        let mut nonce = [0u8; NONCE_LEN];
        self.rng
            .fill(&mut nonce)
            .map_err(|_| "the system random generator failed".to_string())?;
        self.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(&self.aad),
                &mut plain,
            )
            .map_err(|_| "sealing failed".to_string())?;
        let mut out = Vec::with_capacity(1 + NONCE_LEN + plain.len());
        out.push(VERSION);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&plain);
        zero(&mut plain);
        Ok(out)
    }

    /// The entry, or why it cannot be used (corrupt, truncated, foreign, another secret).
    pub fn open(&self, sealed: &[u8]) -> Result<Entry, String> {
        let unusable = |why: &str| format!("the entry is unusable ({why})");
        if sealed.len() > max_sealed() {
            return Err(unusable("too large"));
        }
        let Some((&version, rest)) = sealed.split_first() else {
            return Err(unusable("empty"));
        };
        if version != VERSION {
            return Err(unusable("unknown format"));
        }
        if rest.len() < NONCE_LEN + CHACHA20_POLY1305.tag_len() {
            return Err(unusable("truncated"));
        }
        let (nonce, body) = rest.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| unusable("bad nonce"))?;
        let mut buf = body.to_vec();
        let opened = self
            .key
            .open_in_place(nonce, Aad::from(&self.aad), &mut buf);
        let result = match opened {
            Err(_) => Err(unusable(
                "it does not authenticate: corrupt, or sealed with another client secret",
            )),
            Ok(plain) => parse(plain).ok_or_else(|| unusable("malformed")),
        };
        zero(&mut buf);
        result
    }
}

fn parse(plain: &[u8]) -> Option<Entry> {
    let u64_at = |at: usize| Some(u64::from_le_bytes(plain.get(at..at + 8)?.try_into().ok()?));
    let len = u32::from_le_bytes(plain.get(16..20)?.try_into().ok()?) as usize;
    let token = std::str::from_utf8(plain.get(20..20usize.checked_add(len)?)?).ok()?;
    Some(Entry {
        token: token.to_owned(),
        refresh_at_ms: u64_at(0)?,
        expires_at_ms: u64_at(8)?,
    })
}

fn zero(buf: &mut [u8]) {
    use zeroize::Zeroize;
    buf.zeroize();
}

/// A random hex string (the Redis lock's owner mark, temporary file names).
pub fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    if SystemRandom::new().fill(&mut buf).is_err() {
        buf.iter_mut().for_each(|b| *b = fastrand::u8(..));
    }
    buf.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry() -> Entry {
        Entry {
            token: "eyJhbGciOi.payload.sig".into(),
            refresh_at_ms: 1_700_000_000_000,
            expires_at_ms: 1_700_000_060_000,
        }
    }

    #[test]
    fn round_trip_and_no_plain_text() {
        let s = Sealer::new(b"demo-secret", "k1");
        let sealed = s.seal(&entry()).unwrap();
        assert_eq!(s.open(&sealed).unwrap(), entry());
        let text = String::from_utf8_lossy(&sealed);
        assert!(!text.contains("eyJ") && !text.contains("payload"));
        // Two seals of the same entry differ (fresh nonce).
        assert_ne!(sealed, s.seal(&entry()).unwrap());
    }

    #[test]
    fn another_secret_another_key_or_any_damage_is_refused() {
        let s = Sealer::new(b"demo-secret", "k1");
        let sealed = s.seal(&entry()).unwrap();
        assert!(Sealer::new(b"other-secret", "k1").open(&sealed).is_err());
        assert!(Sealer::new(b"demo-secret", "k2").open(&sealed).is_err());
        for cut in [0, 1, 5, 13, 28, sealed.len() - 1] {
            assert!(s.open(&sealed[..cut]).is_err(), "cut at {cut}");
        }
        for at in 0..sealed.len() {
            let mut bad = sealed.clone();
            bad[at] ^= 0x40;
            assert!(s.open(&bad).is_err(), "flip at {at}");
        }
        let err = s
            .open(b"garbage that is long enough to hold a nonce and a tag")
            .unwrap_err();
        assert!(err.starts_with("the entry is unusable"), "{err}");
    }

    #[test]
    fn lengths_are_padded() {
        let s = Sealer::new(b"x", "k");
        let mut a = entry();
        a.token = "a".into();
        let mut b = entry();
        b.token = "a".repeat(200);
        assert_eq!(s.seal(&a).unwrap().len(), s.seal(&b).unwrap().len());
    }
}
