//! The Redis cache: one sealed entry per cache key, shared by every host that reaches the
//! server.
//!
//! - The single flight is `SET <key>:lock <random> NX PX <lease>`: the winner fetches and stores
//!   the entry with a TTL that ends at the token's refresh point, renewing the lease while it
//!   fetches; a crashed winner's lock expires by itself within one lease (¾ of
//!   `token_cache_timeout_ms`). The lock (and a rejected entry) is released by compare-and-delete in
//!   Lua, never a blind `DEL` that could drop someone else's.
//! - One connection is kept and reused; it is [`Owned`] by its fork generation, so a child of
//!   fork() never writes to the parent's socket. After any I/O failure it is dropped, and a
//!   reused connection that turns out dead (Redis restarted) is replaced once within the same
//!   operation. Connect, read and write are each bounded by `token_cache_timeout_ms`.
//! - Messages show the URL without its password, and scrub the password from server text.

use super::Backend;
use crate::error::quote_prefix;
use crate::error::{Error, Result};
use crate::fork::Owned;
use crate::http::url_policy::{check_redis_url, redact};
use crate::secret::Secret;
use ::redis::{Client, Connection, RedisError, RedisResult};
use arc_swap::ArcSwapOption;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Deletes KEYS[1] only if it still holds ARGV[1].
const COMPARE_AND_DELETE: &str =
    "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) else return 0 end";

/// Sets the expiry of KEYS[1] to ARGV[2] ms only if it still holds ARGV[1].
const COMPARE_AND_EXPIRE: &str =
    "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) else return 0 end";

pub struct RedisCache {
    client: Client,
    /// The URL without the password, for messages.
    shown: String,
    /// The password as written and decoded, scrubbed from any message.
    password: Option<(Secret, Secret)>,
    key: String,
    lock_key: String,
    timeout: Duration,
    conn: ArcSwapOption<Owned<Mutex<Connection>>>,
}

impl RedisCache {
    pub fn new(url: &str, ca_file: Option<&str>, key: &str, timeout: Duration) -> Result<Self> {
        let parsed = check_redis_url(url)?;
        let shown = redact(&parsed);
        let client = match ca_file {
            Some(path) if parsed.scheme() == "rediss" => {
                let root_cert = std::fs::read(path).map_err(|e| {
                    Error::invalid(format!(
                        "ca_file '{}' cannot be read for redis_url: {e}",
                        quote_prefix(path, 200)
                    ))
                })?;
                let certs = ::redis::TlsCertificates {
                    client_tls: None,
                    root_cert: Some(root_cert),
                };
                Client::build_with_tls(url, certs).map_err(|_| {
                    Error::invalid(format!(
                        "redis_url '{shown}': ca_file holds no usable certificate"
                    ))
                })?
            }
            _ => Client::open(url).map_err(|_| {
                Error::invalid(format!(
                    "redis_url '{shown}' is not accepted by the Redis client"
                ))
            })?,
        };
        let password = parsed
            .password()
            .filter(|p| !p.is_empty())
            .map(|p| (Secret::new(p), Secret::new(&percent_decode(p))));
        Ok(RedisCache {
            client,
            shown: format!("redis token cache {shown}"),
            password,
            key: format!("cloudauth:token:{key}"),
            lock_key: format!("cloudauth:token:{key}:lock"),
            timeout,
            conn: ArcSwapOption::empty(),
        })
    }

    /// Runs `op` on the kept connection, or a new one. A kept connection that fails with an
    /// I/O error is dropped and the operation tried once more on a fresh one (Redis may have
    /// restarted since it was opened).
    fn run<T>(
        &self,
        what: &str,
        op: impl Fn(&mut Connection) -> RedisResult<T>,
    ) -> std::result::Result<T, String> {
        if let Some(kept) = self.conn.load_full().filter(|c| c.is_current()) {
            let result = {
                let conn = kept.get().expect("current generation");
                let mut conn = conn.lock().unwrap_or_else(|p| p.into_inner());
                op(&mut conn)
            };
            match result {
                Ok(v) => return Ok(v),
                Err(e) if broken(&e) => {
                    self.forget(&kept);
                    if e.is_timeout() {
                        return Err(self.message(what, &e));
                    }
                }
                Err(e) => return Err(self.message(what, &e)),
            }
        }
        let conn = self
            .connect()
            .map_err(|e| self.message("cannot connect", &e))?;
        let fresh = Arc::new(Owned::new(Mutex::new(conn)));
        let result = {
            let conn = fresh.get().expect("built in this generation");
            let mut conn = conn.lock().unwrap_or_else(|p| p.into_inner());
            op(&mut conn)
        };
        match result {
            Err(e) if broken(&e) => Err(self.message(what, &e)),
            result => {
                // Kept even after a server error (a full Redis, say): the connection is sound.
                self.conn.store(Some(fresh));
                result.map_err(|e| self.message(what, &e))
            }
        }
    }

    fn connect(&self) -> RedisResult<Connection> {
        let conn = self.client.get_connection_with_timeout(self.timeout)?;
        conn.set_read_timeout(Some(self.timeout))?;
        conn.set_write_timeout(Some(self.timeout))?;
        Ok(conn)
    }

    fn forget(&self, conn: &Arc<Owned<Mutex<Connection>>>) {
        let current = self.conn.load();
        if current.as_ref().is_some_and(|c| Arc::ptr_eq(c, conn)) {
            self.conn.compare_and_swap(&*current, None);
        }
    }

    pub(crate) fn message(&self, what: &str, e: &RedisError) -> String {
        // Scrubbed whole, then shortened: a cut could leave half a password behind.
        let mut text = e.to_string();
        if let Some((raw, decoded)) = &self.password {
            text = text
                .replace(raw.expose(), "***")
                .replace(decoded.expose(), "***");
        }
        format!("{}: {what}: {}", self.shown, quote_prefix(&text, 200))
    }
}

/// An error after which the connection's state is unknown (a reply may still be in flight).
fn broken(e: &RedisError) -> bool {
    e.is_io_error() || e.is_timeout() || e.is_connection_dropped() || e.is_unrecoverable_error()
}

fn millis(d: Duration) -> u64 {
    (d.as_millis() as u64).max(1)
}

impl Backend for RedisCache {
    type Lock = String;

    fn read(&self) -> std::result::Result<Option<Vec<u8>>, String> {
        self.run("GET failed", |c| {
            ::redis::cmd("GET").arg(&self.key).query(c)
        })
    }

    fn write(&self, sealed: &[u8], ttl: Duration) -> std::result::Result<(), String> {
        self.run("SET failed", |c| {
            ::redis::cmd("SET")
                .arg(&self.key)
                .arg(sealed)
                .arg("PX")
                .arg(millis(ttl))
                .query(c)
        })
    }

    fn remove_if_equal(&self, sealed: &[u8]) -> std::result::Result<(), String> {
        self.run("removing the rejected entry failed", |c| {
            ::redis::cmd("EVAL")
                .arg(COMPARE_AND_DELETE)
                .arg(1)
                .arg(&self.key)
                .arg(sealed)
                .query::<i64>(c)
        })
        .map(drop)
    }

    fn try_lock(&self, hold: Duration) -> std::result::Result<Option<String>, String> {
        let mark = super::seal::random_hex(16);
        let taken: Option<String> = self.run("taking the lock failed", |c| {
            ::redis::cmd("SET")
                .arg(&self.lock_key)
                .arg(&mark)
                .arg("NX")
                .arg("PX")
                .arg(millis(hold))
                .query(c)
        })?;
        Ok(taken.map(|_| mark))
    }

    /// Three quarters of `token_cache_timeout_ms`: a waiter's next poll (at most a quarter
    /// apart) then comes within the timeout of a dead holder's last renewal.
    fn lease(&self) -> Option<Duration> {
        Some(self.timeout * 3 / 4)
    }

    fn renew(&self, mark: &String, lease: Duration) -> std::result::Result<(), String> {
        self.run("renewing the lock failed", |c| {
            ::redis::cmd("EVAL")
                .arg(COMPARE_AND_EXPIRE)
                .arg(1)
                .arg(&self.lock_key)
                .arg(mark)
                .arg(millis(lease))
                .query::<i64>(c)
        })
        .map(drop)
    }

    fn unlock(&self, mark: String) -> std::result::Result<(), String> {
        self.run("releasing the lock failed", |c| {
            ::redis::cmd("EVAL")
                .arg(COMPARE_AND_DELETE)
                .arg(1)
                .arg(&self.lock_key)
                .arg(&mark)
                .query::<i64>(c)
        })
        .map(drop)
    }
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_checked_without_showing_the_password() {
        assert!(check_redis_url("redis://127.0.0.1:6379/0").is_ok());
        assert!(check_redis_url("rediss://u:p@cache.example:6380").is_ok());
        for bad in [
            "http://:hunter2@host:6379",
            "redis://:hunter2@host:6379/db",
            "redis://:hunter2@:6379",
            "nonsense",
        ] {
            let err = check_redis_url(bad).unwrap_err();
            assert!(err.message.starts_with("redis_url"), "{}", err.message);
            assert!(!err.message.contains("hunter2"), "{}", err.message);
        }
    }

    #[test]
    fn percent_decoding() {
        assert_eq!(percent_decode("a%40b%2"), "a@b%2");
        assert_eq!(percent_decode("%41%4a"), "AJ");
    }
}
