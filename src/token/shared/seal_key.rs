//! The sealing key of shared-cache entries when the client has no stable secret: a federated
//! client assertion or a subject token rotates every few minutes, so it cannot seal entries
//! that other processes (or this one, later) must open. `token_cache_key_file` names a key
//! the deployment shares (required for `redis`); for `file` without one, a per-user key is
//! made once, 0600, in the cache directory (every process of the user reads the same one).

use crate::error::{quote_prefix, Error, Result};
use crate::oauth::TokenCacheKind;
use crate::secret::Secret;
use crate::token::shared::CacheSettings;
use std::io::{Read, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

const KEY: &str = "token_cache_key_file";
/// Below this a key is guessable; above it, not a key file.
const MIN_BYTES: usize = 16;
const MAX_BYTES: u64 = 4096;
/// The per-user key's name in the cache directory (entries are `<sha256>.token`).
const DEFAULT_NAME: &str = "sealing.key";

/// Where the sealing key comes from; read at session_new and at every fetch (a replaced file
/// re-keys the entries, as a rotated secret does).
#[derive(Clone, Debug)]
pub struct SealKey {
    path: PathBuf,
}

impl SealKey {
    /// The key for this configuration, or `None` when the credential seals (`stable`: a
    /// client secret, a private key, a certificate, a service-account file) and no
    /// `token_cache_key_file` is given, or no shared cache is used.
    pub fn resolve(cfg: &CacheSettings, stable: bool) -> Result<Option<SealKey>> {
        if cfg.token_cache == TokenCacheKind::Memory {
            return Ok(None);
        }
        if let Some(path) = &cfg.endpoint.workload.token_cache_key_file {
            let key = SealKey { path: path.into() };
            key.read()?;
            return Ok(Some(key));
        }
        if stable {
            return Ok(None);
        }
        if cfg.token_cache == TokenCacheKind::Redis {
            return Err(Error::invalid(format!(
                "{KEY} is not set; token_cache=redis needs it when there is no client secret \
                 or private key (a federated assertion or subject token rotates, so it cannot \
                 seal shared entries): give every host the same key file"
            )));
        }
        let dir = cfg
            .token_cache_dir
            .as_deref()
            .map(PathBuf::from)
            .or_else(super::file::default_dir)
            .ok_or_else(|| {
                Error::invalid(format!(
                    "{KEY} is not set and there is no cache directory for a per-user key (set \
                     token_cache_dir, XDG_CACHE_HOME or HOME)"
                ))
            })?;
        let path = dir.join(DEFAULT_NAME);
        create_default(&dir, &path)?;
        let key = SealKey { path };
        key.read()?;
        Ok(Some(key))
    }

    /// The key file's bytes (trailing whitespace dropped).
    pub fn read(&self) -> Result<Secret> {
        let shown = quote_prefix(&self.path.to_string_lossy(), 200);
        let bad = |why: String| Error::invalid(format!("{KEY}: '{shown}' {why}"));
        let file =
            std::fs::File::open(&self.path).map_err(|e| bad(format!("cannot be read: {e}")))?;
        let meta = file
            .metadata()
            .map_err(|e| bad(format!("cannot be read: {e}")))?;
        if meta.mode() & 0o077 != 0 {
            return Err(bad(
                "is readable or writable by other users; refused (make it 0600)".into(),
            ));
        }
        let mut bytes = zeroize::Zeroizing::new(Vec::new());
        file.take(MAX_BYTES + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| bad(format!("cannot be read: {e}")))?;
        let text = String::from_utf8_lossy(&bytes);
        let key = text.trim_end();
        if bytes.len() as u64 > MAX_BYTES || key.len() < MIN_BYTES {
            return Err(bad(format!(
                "must hold from {MIN_BYTES} to {MAX_BYTES} bytes (e.g. openssl rand -hex 32)"
            )));
        }
        Ok(Secret::new(key))
    }
}

/// Makes the per-user key unless it exists: 32 random bytes in hex, written 0600 through a
/// temporary file and hard-linked into place, so a reader never sees a half-written key and
/// two processes racing keep the first one's.
fn create_default(dir: &Path, path: &Path) -> Result<()> {
    let shown = quote_prefix(&path.to_string_lossy(), 200);
    let fail = |e: String| {
        Error::invalid(format!(
            "{KEY}: cannot create the per-user key '{shown}': {e}"
        ))
    };
    super::file::check_dir(dir, true).map_err(fail)?;
    if std::fs::symlink_metadata(path).is_ok() {
        return Ok(());
    }
    let mut bytes = [0u8; 32];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes)
        .map_err(|_| fail("no system randomness".into()))?;
    let hex: zeroize::Zeroizing<String> =
        zeroize::Zeroizing::new(bytes.iter().map(|b| format!("{b:02x}")).collect());
    zeroize::Zeroize::zeroize(&mut bytes);
    let temp = dir.join(format!(".{DEFAULT_NAME}.{}", crate::jose::random_id()));
    let written = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&temp)
        .and_then(|mut f| {
            f.write_all(hex.as_bytes())?;
            f.write_all(b"\n")?;
            f.sync_all()
        });
    let linked = written.and_then(|_| std::fs::hard_link(&temp, path));
    let _ = std::fs::remove_file(&temp);
    match linked {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(fail(e.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn dir() -> PathBuf {
        let d = std::env::temp_dir().join(format!("cloudauth-seal-{}", crate::jose::random_id()));
        std::fs::create_dir_all(&d).unwrap();
        std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o700)).unwrap();
        d
    }

    fn cfg(pairs: &[(&str, &str)]) -> CacheSettings {
        crate::session::settings_of(pairs).1
    }

    #[test]
    fn file_cache_makes_one_private_per_user_key() {
        let d = dir();
        let c = cfg(&[
            ("token_cache", "file"),
            ("token_cache_dir", d.to_str().unwrap()),
        ]);
        let a = SealKey::resolve(&c, false)
            .unwrap()
            .unwrap()
            .read()
            .unwrap();
        let meta = std::fs::metadata(d.join(DEFAULT_NAME)).unwrap();
        assert_eq!(meta.mode() & 0o777, 0o600);
        assert_eq!(a.expose().len(), 64);
        // Another process (session) finds the same key.
        let b = SealKey::resolve(&c, false)
            .unwrap()
            .unwrap()
            .read()
            .unwrap();
        assert_eq!(a, b);
        // A stable credential seals by itself; memory needs nothing.
        assert!(SealKey::resolve(&c, true).unwrap().is_none());
        assert!(SealKey::resolve(&cfg(&[]), false).unwrap().is_none());
    }

    #[test]
    fn redis_needs_a_key_file_and_a_bad_one_is_named() {
        let c = cfg(&[
            ("token_cache", "redis"),
            ("redis_url", "redis://127.0.0.1:9/"),
        ]);
        let err = SealKey::resolve(&c, false).unwrap_err();
        assert!(
            err.message.starts_with("token_cache_key_file is not set"),
            "{}",
            err.message
        );
        let d = dir();
        let path = d.join("k");
        for (content, mode, why) in [
            ("short", 0o600, "must hold"),
            ("0123456789abcdef0123", 0o644, "other users"),
        ] {
            std::fs::write(&path, content).unwrap();
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
            let mut c = c.clone();
            c.endpoint.workload.token_cache_key_file = Some(path.to_str().unwrap().into());
            let err = SealKey::resolve(&c, false).unwrap_err();
            assert!(
                err.message.starts_with("token_cache_key_file: '"),
                "{}",
                err.message
            );
            assert!(err.message.contains(why), "{}", err.message);
            assert!(!err.message.contains("0123456789"), "{}", err.message);
        }
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        let mut c = c.clone();
        c.endpoint.workload.token_cache_key_file = Some(path.to_str().unwrap().into());
        let key = SealKey::resolve(&c, true).unwrap().unwrap();
        assert_eq!(key.read().unwrap().expose(), "0123456789abcdef0123");
    }
}
