//! The file cache: one sealed entry per cache key in a private directory, shared by the
//! processes of one user on one host.
//!
//! - The directory is created 0700; one that is a symlink, owned by another user, or writable
//!   by others is refused. Entries are regular files owned by us, opened without following
//!   symlinks, written 0600 through a temporary file in the same directory (fsync, rename), so
//!   a reader never sees a torn entry. The temporary files of a writer that crashed before
//!   its rename are removed by the next writer (ours only: this user's, named as we name
//!   them, older than a minute).
//! - The single flight is an exclusive `flock` on `<key>.lock`, a file that is never deleted
//!   (deleting it would let two processes lock two different files). It is unlocked
//!   explicitly, because a fork child holds the same open file description.
//! - Each operation runs on a helper thread and is abandoned past `token_cache_timeout_ms`,
//!   so a hung file system (NFS, FUSE) cannot hold a caller.

use super::seal::{max_sealed, random_hex};
use super::Backend;
use std::fs::{DirBuilder, File, OpenOptions, TryLockError};
use std::io::{ErrorKind, Read, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, Instant};

pub struct FileCache {
    /// `None` when no directory was configured and neither XDG_CACHE_HOME nor HOME is set.
    dir: Option<PathBuf>,
    key: String,
    timeout: Duration,
}

impl FileCache {
    pub fn new(dir: Option<&str>, key: &str, timeout: Duration) -> FileCache {
        FileCache {
            dir: dir.map(PathBuf::from).or_else(default_dir),
            key: key.to_owned(),
            timeout,
        }
    }

    /// The directory in use, for messages and tests.
    pub fn dir(&self) -> Option<&Path> {
        self.dir.as_deref()
    }

    fn shown(&self) -> String {
        match &self.dir {
            Some(d) => format!("file token cache {}", d.display()),
            None => "file token cache".into(),
        }
    }

    /// Runs `op` on the directory on a helper thread, bounded by the timeout.
    fn bounded<T: Send + 'static>(
        &self,
        what: &str,
        op: impl FnOnce(&Paths) -> Result<T, String> + Send + 'static,
    ) -> Result<T, String> {
        let shown = self.shown();
        let Some(dir) = self.dir.clone() else {
            return Err(format!(
                "{shown}: no directory (set token_cache_dir, XDG_CACHE_HOME or HOME)"
            ));
        };
        let paths = Paths {
            entry: dir.join(format!("{}.token", self.key)),
            lock: dir.join(format!("{}.lock", self.key)),
            key: self.key.clone(),
            dir,
        };
        let (tx, rx) = mpsc::sync_channel(1);
        std::thread::Builder::new()
            .name("cloudauth-cache".into())
            .spawn(move || {
                let _ = tx.send(op(&paths));
            })
            .map_err(|e| format!("{shown}: cannot start a thread ({e})"))?;
        match rx.recv_timeout(self.timeout) {
            Ok(result) => result.map_err(|why| format!("{shown}: {what}: {why}")),
            Err(_) => Err(format!(
                "{shown}: {what} took longer than token_cache_timeout_ms ({} ms)",
                self.timeout.as_millis()
            )),
        }
    }
}

struct Paths {
    dir: PathBuf,
    entry: PathBuf,
    lock: PathBuf,
    key: String,
}

impl Backend for FileCache {
    type Lock = File;

    fn read(&self) -> Result<Option<Vec<u8>>, String> {
        self.bounded("cannot read the entry", |p| {
            check_dir(&p.dir, false)?;
            read_entry(&p.entry)
        })
    }

    fn write(&self, sealed: &[u8], _ttl: Duration) -> Result<(), String> {
        let sealed = sealed.to_vec();
        self.bounded("cannot store the entry", move |p| {
            check_dir(&p.dir, true)?;
            write_entry(p, &sealed)
        })
    }

    fn remove_if_equal(&self, sealed: &[u8]) -> Result<(), String> {
        let sealed = sealed.to_vec();
        let timeout = self.timeout;
        self.bounded("cannot remove the entry", move |p| {
            check_dir(&p.dir, false)?;
            // Under the lock, so a newer entry stored meanwhile is not the one removed. A
            // fetch holding it too long will replace the entry anyway: go on without it.
            let deadline = Instant::now() + timeout / 2;
            let lock = loop {
                match take_lock(&p.lock)? {
                    Some(lock) => break Some(lock),
                    None if Instant::now() < deadline => {
                        std::thread::sleep(Duration::from_millis(2))
                    }
                    None => break None,
                }
            };
            let result = match read_entry(&p.entry)? {
                Some(current) if current == sealed => {
                    std::fs::remove_file(&p.entry).map_err(|e| e.to_string())
                }
                _ => Ok(()),
            };
            if let Some(lock) = lock {
                let _ = lock.unlock();
            }
            result
        })
    }

    fn try_lock(&self, _hold: Duration) -> Result<Option<File>, String> {
        // A crashed holder's lock goes with its process, so `_hold` is not needed here.
        self.bounded("cannot take the lock", |p| {
            check_dir(&p.dir, true)?;
            take_lock(&p.lock)
        })
    }

    fn unlock(&self, lock: File) -> Result<(), String> {
        lock.unlock()
            .map_err(|e| format!("{}: cannot release the lock: {e}", self.shown()))
    }
}

pub(super) fn default_dir() -> Option<PathBuf> {
    let from = |var: &str| std::env::var_os(var).filter(|v| Path::new(v).is_absolute());
    from("XDG_CACHE_HOME")
        .map(|x| PathBuf::from(x).join("cloudauth"))
        .or_else(|| from("HOME").map(|h| PathBuf::from(h).join(".cache").join("cloudauth")))
}

fn my_uid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

/// The directory must be ours, a real directory and not writable by others (who could swap
/// entries). With `create`, a missing one is made (0700, parents too).
pub(super) fn check_dir(dir: &Path, create: bool) -> Result<(), String> {
    let meta = match std::fs::symlink_metadata(dir) {
        Err(e) if e.kind() == ErrorKind::NotFound && create => {
            DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .map_err(|e| format!("cannot create the directory ({e})"))?;
            std::fs::symlink_metadata(dir).map_err(|e| e.to_string())?
        }
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e.to_string()),
        Ok(meta) => meta,
    };
    if meta.file_type().is_symlink() {
        return Err("the directory is a symlink; refused".into());
    }
    if !meta.is_dir() {
        return Err("not a directory".into());
    }
    if meta.uid() != my_uid() {
        return Err(format!(
            "the directory is owned by uid {}, not by this user; refused",
            meta.uid()
        ));
    }
    if meta.permissions().mode() & 0o022 != 0 {
        return Err("the directory is writable by other users; refused (make it 0700)".into());
    }
    Ok(())
}

/// A regular file of ours, never through a symlink, never a FIFO that would block.
fn open_checked(path: &Path, options: &mut OpenOptions) -> Result<Option<File>, String> {
    let file = match options
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
    {
        Ok(f) => f,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => {
            return Err(format!("{} is a symlink; refused", name(path)))
        }
        Err(e) => return Err(format!("{}: {e}", name(path))),
    };
    let meta = file.metadata().map_err(|e| e.to_string())?;
    if !meta.is_file() {
        return Err(format!("{} is not a regular file; refused", name(path)));
    }
    if meta.uid() != my_uid() {
        return Err(format!(
            "{} is owned by uid {}, not by this user; refused",
            name(path),
            meta.uid()
        ));
    }
    Ok(Some(file))
}

fn name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

fn read_entry(path: &Path) -> Result<Option<Vec<u8>>, String> {
    let Some(file) = open_checked(path, OpenOptions::new().read(true))? else {
        return Ok(None);
    };
    let mut sealed = Vec::new();
    file.take(max_sealed() as u64 + 1)
        .read_to_end(&mut sealed)
        .map_err(|e| format!("{}: {e}", name(path)))?;
    Ok(Some(sealed))
}

/// A writer's temporary file left this long is a crashed writer's: a live one renames it
/// within the cache timeout.
const STALE_TEMP_AGE: Duration = Duration::from_secs(60);

fn write_entry(p: &Paths, sealed: &[u8]) -> Result<(), String> {
    remove_stale_temps(&p.dir);
    let temp = p.dir.join(format!(
        ".{}.{}.{}.tmp",
        p.key,
        std::process::id(),
        random_hex(6)
    ));
    let written = (|| {
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&temp)?;
        file.write_all(sealed)?;
        file.sync_all()?;
        std::fs::rename(&temp, &p.entry)
    })();
    if let Err(e) = written {
        let _ = std::fs::remove_file(&temp);
        return Err(e.to_string());
    }
    Ok(())
}

/// Removes the temporary files of writers that died before their rename: only regular files
/// of this user, named as `write_entry` names them, older than [`STALE_TEMP_AGE`]. Best effort:
/// a file that cannot be removed stays, and the write goes on.
fn remove_stale_temps(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        if !name.to_str().is_some_and(is_temp_name) {
            continue;
        }
        // Not followed: a symlink is nobody's temporary file.
        let Ok(meta) = std::fs::symlink_metadata(entry.path()) else {
            continue;
        };
        let old = meta
            .modified()
            .ok()
            .and_then(|m| m.elapsed().ok())
            .is_some_and(|age| age > STALE_TEMP_AGE);
        if meta.file_type().is_file() && meta.uid() == my_uid() && old {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// `.<64 hex key>.<pid>.<12 hex>.tmp`, the name `write_entry` gives its temporary file.
fn is_temp_name(name: &str) -> bool {
    let Some(inner) = name.strip_prefix('.').and_then(|n| n.strip_suffix(".tmp")) else {
        return false;
    };
    let hex = |s: &str, len: usize| s.len() == len && s.bytes().all(|b| b.is_ascii_hexdigit());
    let parts: Vec<&str> = inner.split('.').collect();
    matches!(parts.as_slice(), [key, pid, random]
        if hex(key, 64)
            && !pid.is_empty() && pid.len() <= 10 && pid.bytes().all(|b| b.is_ascii_digit())
            && hex(random, 12))
}

fn take_lock(path: &Path) -> Result<Option<File>, String> {
    let file = open_checked(
        path,
        OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600),
    )?
    .ok_or_else(|| format!("{} vanished", name(path)))?;
    match file.try_lock() {
        Ok(()) => Ok(Some(file)),
        Err(TryLockError::WouldBlock) => Ok(None),
        Err(TryLockError::Error(e)) => Err(format!("{}: {e}", name(path))),
    }
}
